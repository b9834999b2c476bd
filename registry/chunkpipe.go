package registry

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
)

// errPipeStopped is what a chunkPipe's writer gets once its reader has
// stopped reading.
var errPipeStopped = errors.New("registry: the reader of the layer's stream stopped")

// chunkPipe hands a byte stream from one goroutine to another in large
// chunks, a fixed number of which are reused: unlike io.Pipe, whose Write
// returns only once the reader has taken every byte, the writer goes on
// filling the next chunk while the reader works on the last, so that the
// two overlap, and the hand-over costs one channel operation a chunk
// rather than one a Read. Its memory is bounded by chunks×size, allocated
// only as the stream needs it.
//
// One goroutine writes (Write, ReadFrom, then CloseWrite) and one reads
// (Read, and Stop when it gives up); the chunks pass between them over
// channels, which order every byte's write before its read.
type chunkPipe struct {
	size int
	full chan []byte   // chunks written, in order; closed by CloseWrite
	free chan []byte   // chunks to fill again (nil: not allocated yet)
	done chan struct{} // closed by Stop
	stop sync.Once
	err  error // the writer's last word, read after full is closed
	// waiting is set while the reader waits for a chunk: ReadFrom then
	// hands over what it has rather than wait for a full chunk, so that a
	// slow source is worked on as it arrives.
	waiting atomic.Bool

	cur []byte // the writer's chunk being filled

	held []byte // the reader's chunk, returned to free once read
	rest []byte // its bytes not yet read
}

func newChunkPipe(chunks, size int) *chunkPipe {
	p := &chunkPipe{
		size: size,
		full: make(chan []byte, chunks),
		free: make(chan []byte, chunks),
		done: make(chan struct{}),
	}
	for range chunks {
		p.free <- nil
	}
	return p
}

// next gives the writer a chunk to fill, waiting for the reader to free
// one when all are in use.
func (p *chunkPipe) next() error {
	if p.cur != nil {
		return nil
	}
	select {
	case c := <-p.free:
		if c == nil {
			c = make([]byte, 0, p.size)
		}
		p.cur = c[:0]
		return nil
	case <-p.done:
		return errPipeStopped
	}
}

// send hands the writer's chunk to the reader.
func (p *chunkPipe) send() error {
	select {
	case p.full <- p.cur:
		p.cur = nil
		return nil
	case <-p.done:
		return errPipeStopped
	}
}

// Write copies b into chunks, handing each over as it fills: a decoder's
// output comes in pieces too small to be worth a hand-over each.
func (p *chunkPipe) Write(b []byte) (int, error) {
	n := 0
	for len(b) > 0 {
		if err := p.next(); err != nil {
			return n, err
		}
		k := copy(p.cur[len(p.cur):cap(p.cur)], b)
		p.cur = p.cur[:len(p.cur)+k]
		b, n = b[k:], n+k
		if len(p.cur) == cap(p.cur) {
			if err := p.send(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// ReadFrom reads r straight into chunks until r ends, without a copy of
// its own, handing each over when it is full or when the reader waits. It
// returns r's error other than io.EOF, or errPipeStopped.
func (p *chunkPipe) ReadFrom(r io.Reader) (int64, error) {
	var n int64
	for {
		if err := p.next(); err != nil {
			return n, err
		}
		k, err := r.Read(p.cur[len(p.cur):cap(p.cur)])
		p.cur = p.cur[:len(p.cur)+k]
		n += int64(k)
		if len(p.cur) == cap(p.cur) || len(p.cur) > 0 && p.waiting.Load() {
			if err := p.send(); err != nil {
				return n, err
			}
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// CloseWrite hands over what is left and ends the stream: the reader gets
// err after the last byte, or io.EOF when err is nil.
func (p *chunkPipe) CloseWrite(err error) {
	if len(p.cur) > 0 {
		if p.send() != nil {
			p.cur = nil
		}
	}
	if err == nil {
		err = io.EOF
	}
	p.err = err
	close(p.full)
}

// Read copies the stream's next bytes into b.
func (p *chunkPipe) Read(b []byte) (int, error) {
	for len(p.rest) == 0 {
		if p.held != nil {
			// Never blocks: free has room for every chunk there is.
			p.free <- p.held[:0]
			p.held = nil
		}
		var c []byte
		var ok bool
		select {
		case c, ok = <-p.full:
		default:
			p.waiting.Store(true)
			c, ok = <-p.full
			p.waiting.Store(false)
		}
		if !ok {
			return 0, p.err
		}
		p.held, p.rest = c, c
	}
	n := copy(b, p.rest)
	p.rest = p.rest[n:]
	return n, nil
}

// WriteTo hands the stream's chunks to w as they are, without a copy.
func (p *chunkPipe) WriteTo(w io.Writer) (int64, error) {
	var n int64
	for {
		if len(p.rest) > 0 {
			k, err := w.Write(p.rest)
			p.rest = p.rest[k:]
			n += int64(k)
			if err != nil {
				return n, err
			}
		}
		if _, err := p.Read(nil); err != nil {
			if err == io.EOF {
				return n, nil
			}
			return n, err
		}
	}
}

// Stop tells the writer that nothing more will be read: its Write and
// ReadFrom return errPipeStopped instead of waiting for a free chunk.
func (p *chunkPipe) Stop() {
	p.stop.Do(func() { close(p.done) })
}

// stopped reports whether Stop was called.
func (p *chunkPipe) stopped() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}
