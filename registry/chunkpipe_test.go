package registry

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
)

// TestChunkPipeCarriesTheStream: bytes written in pieces of every size,
// through Write and ReadFrom, come out in order and whole, followed by the
// writer's error or io.EOF, whatever sizes the reader asks for.
func TestChunkPipeCarriesTheStream(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	want := make([]byte, 1<<20+12345)
	for i := range want {
		want[i] = byte(rnd.Uint32())
	}
	for _, tc := range []struct {
		name  string
		write func(p *chunkPipe) error
	}{
		{"Write in odd pieces", func(p *chunkPipe) error {
			for rest := want; len(rest) > 0; {
				n := min(len(rest), 1+rnd.IntN(100_000))
				if k, err := p.Write(rest[:n]); err != nil || k != n {
					return err
				}
				rest = rest[n:]
			}
			return nil
		}},
		{"ReadFrom a reader of one byte a read", func(p *chunkPipe) error {
			_, err := p.ReadFrom(iotest.OneByteReader(bytes.NewReader(want[:5000])))
			if err != nil {
				return err
			}
			_, err = p.ReadFrom(bytes.NewReader(want[5000:]))
			return err
		}},
		{"ReadFrom a reader that ends with data", func(p *chunkPipe) error {
			_, err := p.ReadFrom(iotest.DataErrReader(bytes.NewReader(want)))
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newChunkPipe(3, 64<<10)
			go func() { p.CloseWrite(tc.write(p)) }()
			// iotest.TestReader reads in several ways and checks the
			// bytes against want.
			if err := iotest.TestReader(p, want); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("the writer's error follows the last byte", func(t *testing.T) {
		boom := errors.New("connection reset")
		p := newChunkPipe(2, 4<<10)
		go func() {
			_, err := p.ReadFrom(io.MultiReader(bytes.NewReader(want[:10_000]), iotest.ErrReader(boom)))
			p.CloseWrite(err)
		}()
		got, err := io.ReadAll(p)
		if !errors.Is(err, boom) || !bytes.Equal(got, want[:10_000]) {
			t.Fatalf("read %d bytes and %v, want 10000 and %v", len(got), err, boom)
		}
		if _, err := p.Read(make([]byte, 1)); !errors.Is(err, boom) {
			t.Fatalf("a read after the end = %v, want %v again", err, boom)
		}
	})
	t.Run("WriteTo hands on every byte", func(t *testing.T) {
		p := newChunkPipe(2, 4<<10)
		go func() { _, err := p.Write(want); p.CloseWrite(err) }()
		var got bytes.Buffer
		if n, err := p.WriteTo(&got); err != nil || n != int64(len(want)) || !bytes.Equal(got.Bytes(), want) {
			t.Fatalf("WriteTo = %d, %v; bytes equal: %v", n, err, bytes.Equal(got.Bytes(), want))
		}
	})
}

// TestChunkPipeStop: a writer waiting for a free chunk, because the reader
// stopped reading, returns errPipeStopped once the reader says so, from
// Write and from ReadFrom alike; bytes beyond what the chunks hold are
// never taken.
func TestChunkPipeStop(t *testing.T) {
	for _, viaReadFrom := range []bool{false, true} {
		p := newChunkPipe(2, 1024)
		done := make(chan error, 1)
		src := bytes.NewReader(make([]byte, 1<<20))
		go func() {
			var err error
			if viaReadFrom {
				_, err = p.ReadFrom(src)
			} else {
				_, err = io.Copy(struct{ io.Writer }{p}, src)
			}
			p.CloseWrite(nil)
			done <- err
		}()
		// The first chunk is read; then the reader gives up.
		if _, err := io.ReadFull(p, make([]byte, 1024)); err != nil {
			t.Fatal(err)
		}
		p.Stop()
		if err := <-done; !errors.Is(err, errPipeStopped) {
			t.Fatalf("ReadFrom %v: writer ended with %v, want errPipeStopped", viaReadFrom, err)
		}
		// At most the 2 chunks, and the one read, were filled: io.Copy's
		// own buffer of 32 KiB may hold the rest.
		if taken := src.Size() - int64(src.Len()); taken > 3*1024+32<<10 {
			t.Errorf("ReadFrom %v: the writer took %d bytes, more than the chunks hold", viaReadFrom, taken)
		}
	}
}
