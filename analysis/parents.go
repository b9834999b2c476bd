package analysis

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"sync"
)

// ChainIDs returns the OCI ChainID of every prefix of a layer list given by
// diffIDs: out[k] identifies the filesystem made by the first k+1 layers.
// ChainID(L0) = DiffID(L0); ChainID(L0..Ln) = sha256(ChainID(L0..Ln-1) + " " + DiffID(Ln)).
// Two images share their first k layers exactly when their out[k-1] agree,
// which turns parent detection into map lookups.
func ChainIDs(diffIDs []string) []string {
	out := make([]string, len(diffIDs))
	var buf []byte
	for i, d := range diffIDs {
		if i == 0 {
			out[0] = d
			continue
		}
		buf = append(buf[:0], out[i-1]...)
		buf = append(buf, ' ')
		buf = append(buf, d...)
		sum := sha256.Sum256(buf)
		out[i] = "sha256:" + hex.EncodeToString(sum[:])
	}
	return out
}

// chainKey is the compact form of a ChainID used as a map key.
type chainKey [32]byte

func keyOf(id string) (chainKey, bool) {
	var k chainKey
	_, h, ok := strings.Cut(id, ":")
	if !ok || len(h) != 64 {
		return k, false
	}
	if _, err := hex.Decode(k[:], []byte(h)); err != nil {
		return k, false
	}
	return k, true
}

// ParentCandidate is a known platform image whose whole layer list is a
// prefix of the image being looked up.
type ParentCandidate struct {
	Repository Repository
	// Digest is the platform manifest's digest.
	Digest string
	// Layers is how many layers it has (the length of the shared prefix).
	Layers int
	// Seen orders candidates by when they became known (smaller is earlier).
	Seen int64
}

// ParentIndex finds parent images by layer prefix. It holds, for every known
// platform image, the ChainID of its whole layer list, so the parent of an
// image is found by hashing the image's own prefixes and looking each up,
// longest first: n hashes and n map lookups for an image of n layers,
// whatever the number of images indexed. It is safe for concurrent use.
type ParentIndex struct {
	mu      sync.RWMutex
	byChain map[chainKey]int32 // head of the entry list sharing a chain
	entries []indexEntry
	repos   []Repository
	repoIDs map[Repository]int32
}

// indexEntry is kept small: the index must hold millions of images.
type indexEntry struct {
	digest [32]byte
	next   int32 // next entry with the same chain, -1 at the end
	repo   int32
	seen   int64
	layers uint16
}

// NewParentIndex returns an empty index.
func NewParentIndex() *ParentIndex {
	return &ParentIndex{byChain: map[chainKey]int32{}, repoIDs: map[Repository]int32{}}
}

// Len returns the number of indexed platform images.
func (x *ParentIndex) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.entries)
}

// Add indexes a platform image of repo with the ChainID of its whole layer
// list. seen orders ties (earlier wins). Adding a known image does nothing.
func (x *ParentIndex) Add(repo Repository, digest, chainID string, layers int, seen int64) {
	d, ok := keyOf(digest)
	c, ok2 := keyOf(chainID)
	if !ok || !ok2 || layers <= 0 {
		return
	}
	if layers > 1<<16-1 {
		layers = 1<<16 - 1
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	id, ok := x.repoIDs[repo]
	if !ok {
		id = int32(len(x.repos))
		x.repos = append(x.repos, repo)
		x.repoIDs[repo] = id
	}
	// An image is known once per repository; entries sharing a chain are
	// few (identical images in several repositories), so a walk is cheap.
	next := int32(-1)
	if head, ok := x.byChain[c]; ok {
		for i := head; i >= 0; i = x.entries[i].next {
			if x.entries[i].repo == id && x.entries[i].digest == d {
				return
			}
		}
		next = head
	}
	x.entries = append(x.entries, indexEntry{digest: d, next: next, repo: id, seen: seen, layers: uint16(layers)})
	x.byChain[c] = int32(len(x.entries) - 1)
}

// Lookup returns the known images of repositories other than self whose
// whole layer list is the longest prefix of chain (the output of ChainIDs),
// equal length included. Several candidates share that prefix when
// repositories hold identical images; the caller breaks the tie.
func (x *ParentIndex) Lookup(self Repository, chain []string) []ParentCandidate {
	keys := make([]chainKey, len(chain))
	for i, c := range chain {
		k, ok := keyOf(c)
		if !ok {
			return nil
		}
		keys[i] = k
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	selfID, hasSelf := x.repoIDs[self]
	for k := len(keys) - 1; k >= 0; k-- {
		head, ok := x.byChain[keys[k]]
		if !ok {
			continue
		}
		var out []ParentCandidate
		for i := head; i >= 0; i = x.entries[i].next {
			e := &x.entries[i]
			if hasSelf && e.repo == selfID {
				continue
			}
			out = append(out, ParentCandidate{
				Repository: x.repos[e.repo],
				Digest:     "sha256:" + hex.EncodeToString(e.digest[:]),
				Layers:     int(e.layers),
				Seen:       e.seen,
			})
		}
		if len(out) > 0 {
			return out
		}
	}
	return nil
}
