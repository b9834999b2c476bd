package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/imagebadger/imagebadger/internal/costlru"
)

// responseMemo keeps the bytes of the busiest answers, the JSON image
// report and the image page, by request and by the version of the answer
// they were made from (images.Answer.Version): encoding a report or
// rendering a page is most of what such a request costs, and the same
// answer is read over and over between changes. A new version (a move, a
// new check, an index change) simply misses; nothing is ever invalidated.
// It is bounded in bytes, least recently used first out, not only in
// entries: a page is tens of kilobytes, a large image's report megabytes,
// and the keys come from URLs anyone can vary, so a flood of new keys
// pushes out the old ones one by one rather than emptying the memo.
type responseMemo struct {
	items *costlru.Cache[string, memoResponse]
}

// responseMemoEntries bounds the memo's entries beside its bytes: the
// least an entry costs is its key and version, so without it a flood of
// tiny answers could hold hundreds of thousands of keys.
const responseMemoEntries = 16384

type memoResponse struct {
	version string
	body    []byte
}

func newResponseMemo(maxBytes int) *responseMemo {
	return &responseMemo{items: costlru.New[string, memoResponse](responseMemoEntries, int64(maxBytes))}
}

func (m *responseMemo) get(key, version string) ([]byte, bool) {
	if version == "" {
		return nil, false
	}
	e, ok := m.items.Get(key)
	if !ok || e.version != version {
		return nil, false
	}
	return e.body, true
}

// put keeps body (which the caller must not change afterwards) for key at
// version; an answer without a version, or larger than the whole budget,
// is not kept.
func (m *responseMemo) put(key, version string, body []byte) {
	if version == "" {
		return
	}
	m.items.Add(key, memoResponse{version: version, body: body}, int64(len(key)+len(version)+len(body)))
}

// encodeJSON is the JSON of every API answer: indented for people reading
// it with curl, with a final newline. Only values JSON cannot hold (a NaN,
// a channel) fail, which would be a bug in the answer's type.
func encodeJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("server: encode %T: %w", v, err)
	}
	return b.Bytes(), nil
}

// writeJSON answers with v as JSON, or returns the error that stopped it
// before anything was written.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	body, err := encodeJSON(v)
	if err != nil {
		return err
	}
	writeJSONBytes(w, status, body)
	return nil
}

func writeJSONBytes(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
