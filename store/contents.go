package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/imagebadger/imagebadger/analysis"
)

// The states of a layer's or an image's contents analysis.
const (
	ContentsQueued  = "queued"
	ContentsRunning = "running"
	ContentsDone    = "done"
	ContentsFailed  = "failed"
)

// LayerContentsInfo is what is known of one layer's contents analysis.
type LayerContentsInfo struct {
	Digest      string
	State       string
	Reason      string
	Message     string
	Source      string
	Compression string
	EntryCount  int
	BytesRead   int64
	LeaseOwner  string
	LeaseUntil  time.Time
}

// ClaimLayerContents takes the analysis of layer digest for owner until
// now+lease: a layer never analysed, one that failed, or one whose
// analyser's lease ran out (it died). It reports claimed false, with the
// layer's state, when the layer is done or another holds a live lease: the
// caller then waits for that one rather than read the blob again. Across
// processes the claim is one row's compare-and-set, so two never both win.
func (s *Store) ClaimLayerContents(ctx context.Context, digest, owner string, now time.Time, lease time.Duration) (claimed bool, info LayerContentsInfo, err error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return false, LayerContentsInfo{}, fmt.Errorf("store: claim layer contents %s: %w", digest, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `INSERT INTO layer_contents (digest, state, lease_owner, lease_until, updated_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (digest) DO UPDATE SET state = excluded.state, reason = '', message = '',
			lease_owner = excluded.lease_owner, lease_until = excluded.lease_until, updated_at = excluded.updated_at
		WHERE layer_contents.state = ? OR (layer_contents.state = ? AND (layer_contents.lease_until IS NULL OR layer_contents.lease_until <= ?))`,
		digest, ContentsRunning, owner, millis(now.Add(lease)), millis(now), ContentsFailed, ContentsRunning, millis(now))
	n, err := rowsAffected(res, err)
	if err != nil {
		return false, LayerContentsInfo{}, fmt.Errorf("store: claim layer contents %s: %w", digest, err)
	}
	infos, err := layerContentsInfo(ctx, tx, []string{digest})
	if err != nil {
		return false, LayerContentsInfo{}, err
	}
	if err := tx.Commit(); err != nil {
		return false, LayerContentsInfo{}, fmt.Errorf("store: claim layer contents %s: %w", digest, err)
	}
	return n == 1, infos[digest], nil
}

// RenewLayerContents extends owner's lease on a layer it analyses, so a
// long read is not taken over; it reports false when the lease was lost.
func (s *Store) RenewLayerContents(ctx context.Context, digest, owner string, until time.Time) (bool, error) {
	res, err := s.write.ExecContext(ctx, `UPDATE layer_contents SET lease_until = ? WHERE digest = ? AND state = ? AND lease_owner = ?`,
		millis(until), digest, ContentsRunning, owner)
	n, err := rowsAffected(res, err)
	if err != nil {
		return false, fmt.Errorf("store: renew layer contents %s: %w", digest, err)
	}
	return n == 1, nil
}

// FinishLayerContents keeps a layer's entries and marks it done, in one
// transaction, if owner still holds its lease (ErrLeaseLost otherwise).
// Entries are as analysis.ReadLayer gave them, in tar order; each is kept
// under its cleaned parent directory.
func (s *Store) FinishLayerContents(ctx context.Context, digest, owner string, info LayerContentsInfo, entries []analysis.LayerEntry, now time.Time) error {
	dirs, err := encodeDirs(entries)
	if err != nil {
		return fmt.Errorf("store: finish layer contents %s: %w", digest, err)
	}
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: finish layer contents %s: %w", digest, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE layer_contents SET state = ?, source = ?, compression = ?, entry_count = ?, bytes_read = ?,
		lease_owner = NULL, lease_until = NULL, updated_at = ? WHERE digest = ? AND state = ? AND lease_owner = ?`,
		ContentsDone, info.Source, info.Compression, len(entries), info.BytesRead, millis(now), digest, ContentsRunning, owner)
	if n, err := rowsAffected(res, err); err != nil {
		return fmt.Errorf("store: finish layer contents %s: %w", digest, err)
	} else if n == 0 {
		return fmt.Errorf("store: finish layer contents %s: %w", digest, ErrLeaseLost)
	}
	for _, d := range dirs {
		if _, err := tx.ExecContext(ctx, `INSERT INTO layer_content_dirs (digest, dir, entries) VALUES (?, ?, ?)`, digest, d.dir, d.body); err != nil {
			return fmt.Errorf("store: finish layer contents %s: %w", digest, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: finish layer contents %s: %w", digest, err)
	}
	return nil
}

// FailLayerContents records why owner's analysis of a layer failed; a
// later claim retries it.
func (s *Store) FailLayerContents(ctx context.Context, digest, owner, reason, message string, now time.Time) error {
	if _, err := s.write.ExecContext(ctx, `UPDATE layer_contents SET state = ?, reason = ?, message = ?, lease_owner = NULL, lease_until = NULL, updated_at = ?
		WHERE digest = ? AND state = ? AND lease_owner = ?`,
		ContentsFailed, reason, message, millis(now), digest, ContentsRunning, owner); err != nil {
		return fmt.Errorf("store: fail layer contents %s: %w", digest, err)
	}
	return nil
}

// LayerContents returns what is known of each of digests' analysis; a
// layer never analysed is absent from the map.
func (s *Store) LayerContents(ctx context.Context, digests []string) (map[string]LayerContentsInfo, error) {
	return layerContentsInfo(ctx, s.read, digests)
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func layerContentsInfo(ctx context.Context, q querier, digests []string) (map[string]LayerContentsInfo, error) {
	out := map[string]LayerContentsInfo{}
	for _, d := range digests {
		rows, err := q.QueryContext(ctx, `SELECT digest, state, reason, message, source, compression, entry_count, bytes_read,
			COALESCE(lease_owner, ''), COALESCE(lease_until, 0) FROM layer_contents WHERE digest = ?`, d)
		if err != nil {
			return nil, fmt.Errorf("store: layer contents %s: %w", d, err)
		}
		for rows.Next() {
			var i LayerContentsInfo
			var until int64
			if err := rows.Scan(&i.Digest, &i.State, &i.Reason, &i.Message, &i.Source, &i.Compression, &i.EntryCount, &i.BytesRead, &i.LeaseOwner, &until); err != nil {
				rows.Close()
				return nil, fmt.Errorf("store: layer contents %s: %w", d, err)
			}
			if until != 0 {
				i.LeaseUntil = fromMillis(until)
			}
			out[i.Digest] = i
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("store: layer contents %s: %w", d, err)
		}
	}
	return out, nil
}

// LayerEntries returns every entry of a layer whose analysis is done, in
// tar order, with cleaned absolute paths.
func (s *Store) LayerEntries(ctx context.Context, digest string) ([]analysis.LayerEntry, error) {
	return s.layerEntries(ctx, digest, `SELECT dir, entries FROM layer_content_dirs WHERE digest = ?`, digest)
}

// LayerDirEntries returns the entries of a layer in each of dirs (cleaned
// absolute paths), in tar order: what listing a directory needs of a layer
// without reading the rest of it.
func (s *Store) LayerDirEntries(ctx context.Context, digest string, dirs []string) ([]analysis.LayerEntry, error) {
	if len(dirs) == 0 {
		return nil, nil
	}
	args := []any{digest}
	for _, d := range dirs {
		args = append(args, d)
	}
	q := `SELECT dir, entries FROM layer_content_dirs WHERE digest = ? AND dir IN (?` + strings.Repeat(", ?", len(dirs)-1) + `)`
	return s.layerEntries(ctx, digest, q, args...)
}

func (s *Store) layerEntries(ctx context.Context, digest, query string, args ...any) ([]analysis.LayerEntry, error) {
	rows, err := s.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("store: layer entries %s: %w", digest, err)
	}
	defer rows.Close()
	var all []seqEntry
	for rows.Next() {
		var dir string
		var body []byte
		if err := rows.Scan(&dir, &body); err != nil {
			return nil, fmt.Errorf("store: layer entries %s: %w", digest, err)
		}
		if all, err = decodeDir(all, dir, body); err != nil {
			return nil, fmt.Errorf("store: layer entries %s in %s: %w", digest, dir, err)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: layer entries %s: %w", digest, err)
	}
	// Tar order; the directories an entry needs (implicit, shallower
	// first) before the entry.
	slices.SortFunc(all, func(a, b seqEntry) int {
		return cmp.Or(a.seq-b.seq, boolOrder(b.Implicit)-boolOrder(a.Implicit), len(a.Path)-len(b.Path))
	})
	out := make([]analysis.LayerEntry, len(all))
	for i, e := range all {
		out[i] = e.LayerEntry
	}
	return out, nil
}

// ImageContents is an image's contents analysis as requested and, once
// done, its summary (JSON, as the contents package writes it).
type ImageContents struct {
	Digest      string
	State       string
	Reason      string
	Message     string
	Summary     []byte
	RequestedAt time.Time
	UpdatedAt   time.Time
}

// RequestImageContents records that someone asked for an image's contents
// analysis: a new request, or a retry of one that failed, becomes queued;
// one queued, running or done is left as it is. It returns the record.
func (s *Store) RequestImageContents(ctx context.Context, digest string, now time.Time) (ImageContents, error) {
	if _, err := s.write.ExecContext(ctx, `INSERT INTO image_contents (digest, state, requested_at, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (digest) DO UPDATE SET state = excluded.state, reason = '', message = '', requested_at = excluded.requested_at,
			updated_at = excluded.updated_at WHERE image_contents.state = ?`,
		digest, ContentsQueued, millis(now), millis(now), ContentsFailed); err != nil {
		return ImageContents{}, fmt.Errorf("store: request image contents %s: %w", digest, err)
	}
	return s.ImageContents(ctx, digest)
}

// SetImageContents records an image analysis's new state; summary is kept
// with state done.
func (s *Store) SetImageContents(ctx context.Context, digest, state, reason, message string, summary []byte, now time.Time) error {
	if _, err := s.write.ExecContext(ctx, `UPDATE image_contents SET state = ?, reason = ?, message = ?, summary = ?, updated_at = ? WHERE digest = ?`,
		state, reason, message, summary, millis(now), digest); err != nil {
		return fmt.Errorf("store: set image contents %s: %w", digest, err)
	}
	return nil
}

// ImageContents returns an image's contents record, or an error wrapping
// analysis.ErrNotFound when nobody asked for it.
func (s *Store) ImageContents(ctx context.Context, digest string) (ImageContents, error) {
	var c ImageContents
	var req, upd int64
	err := s.read.QueryRowContext(ctx, `SELECT digest, state, reason, message, summary, requested_at, updated_at FROM image_contents WHERE digest = ?`, digest).
		Scan(&c.Digest, &c.State, &c.Reason, &c.Message, &c.Summary, &req, &upd)
	if errors.Is(err, sql.ErrNoRows) {
		return ImageContents{}, fmt.Errorf("store: image contents %s: %w", digest, analysis.ErrNotFound)
	}
	if err != nil {
		return ImageContents{}, fmt.Errorf("store: image contents %s: %w", digest, err)
	}
	c.RequestedAt, c.UpdatedAt = fromMillis(req), fromMillis(upd)
	return c, nil
}

// The compact form of a directory's entries: per entry, its place in the
// tar, its name, a byte of type and flags, mode, uid, gid, size and link
// target as varints and length-prefixed strings, and a regular file's
// sha256 as 32 raw bytes. About 50 bytes and the name per entry.
const (
	flagDigest   = 1 << 4
	flagImplicit = 1 << 5
	typeMask     = 0x0f
	sha256Prefix = "sha256:"
)

type encodedDir struct {
	dir  string
	body []byte
}

type seqEntry struct {
	seq int
	analysis.LayerEntry
}

// encodeDirs groups a layer's entries by directory. Each directory an
// entry needs but the tar does not hold is kept too, marked implicit, in
// its parent's row: listing a directory then never needs the rows below it.
func encodeDirs(entries []analysis.LayerEntry) ([]encodedDir, error) {
	byDir := map[string][]byte{}
	var order []string
	named := map[string]bool{}
	var all []seqEntry
	for i, e := range entries {
		p, err := analysis.CleanLayerPath(e.Path)
		if err != nil {
			return nil, err
		}
		if p == "/" {
			continue
		}
		e.Path = p
		base := p[strings.LastIndexByte(p, '/')+1:]
		if !strings.HasPrefix(base, ".wh.") {
			for d := parentDir(p); d != "/" && !named[d]; d = parentDir(d) {
				named[d] = true
				all = append(all, seqEntry{seq: i, LayerEntry: analysis.LayerEntry{Path: d, Type: analysis.TypeDir, Mode: 0o755, Implicit: true}})
			}
		}
		if e.Type == analysis.TypeDir {
			named[p] = true
		}
		all = append(all, seqEntry{seq: i, LayerEntry: e})
	}
	for _, se := range all {
		e, i := se.LayerEntry, se.seq
		p := e.Path
		cut := strings.LastIndexByte(p, '/')
		dir, base := p[:cut], p[cut+1:]
		if dir == "" {
			dir = "/"
		}
		b, ok := byDir[dir]
		if !ok {
			order = append(order, dir)
		}
		b = binary.AppendUvarint(b, uint64(i))
		b = binary.AppendUvarint(b, uint64(len(base)))
		b = append(b, base...)
		flags := byte(e.Type) & typeMask
		if e.Implicit {
			flags |= flagImplicit
		}
		var sum []byte
		if hx, ok := strings.CutPrefix(e.Digest, sha256Prefix); ok {
			if d, err := hex.DecodeString(hx); err == nil && len(d) == 32 {
				sum = d
				flags |= flagDigest
			}
		}
		b = append(b, flags)
		b = binary.AppendUvarint(b, uint64(e.Mode))
		b = binary.AppendUvarint(b, uint64(max(e.UID, 0)))
		b = binary.AppendUvarint(b, uint64(max(e.GID, 0)))
		b = binary.AppendUvarint(b, uint64(max(e.Size, 0)))
		b = binary.AppendUvarint(b, uint64(len(e.LinkTarget)))
		b = append(b, e.LinkTarget...)
		if flags&flagDigest != 0 {
			b = append(b, sum...)
		}
		byDir[dir] = b
	}
	out := make([]encodedDir, 0, len(order))
	for _, d := range order {
		out = append(out, encodedDir{dir: d, body: byDir[d]})
	}
	return out, nil
}

var errCorrupt = errors.New("corrupt entries")

func boolOrder(b bool) int {
	if b {
		return 1
	}
	return 0
}

func parentDir(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}

func decodeDir(out []seqEntry, dir string, b []byte) ([]seqEntry, error) {
	uv := func() (uint64, bool) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return v, true
	}
	str := func() (string, bool) {
		n, ok := uv()
		if !ok || n > uint64(len(b)) {
			return "", false
		}
		s := string(b[:n])
		b = b[n:]
		return s, true
	}
	for len(b) > 0 {
		var e seqEntry
		seq, ok1 := uv()
		name, ok2 := str()
		if !ok1 || !ok2 || len(b) == 0 {
			return nil, errCorrupt
		}
		flags := b[0]
		b = b[1:]
		mode, ok3 := uv()
		uid, ok4 := uv()
		gid, ok5 := uv()
		size, ok6 := uv()
		link, ok7 := str()
		if !ok3 || !ok4 || !ok5 || !ok6 || !ok7 {
			return nil, errCorrupt
		}
		e.seq = int(seq)
		if dir == "/" {
			e.Path = "/" + name
		} else {
			e.Path = dir + "/" + name
		}
		e.Type = analysis.EntryType(flags & typeMask)
		e.Mode, e.UID, e.GID, e.Size, e.LinkTarget = uint32(mode), int(uid), int(gid), int64(size), link
		e.Implicit = flags&flagImplicit != 0
		if flags&flagDigest != 0 {
			if len(b) < 32 {
				return nil, errCorrupt
			}
			e.Digest = sha256Prefix + hex.EncodeToString(b[:32])
			b = b[32:]
		}
		out = append(out, e)
	}
	return out, nil
}
