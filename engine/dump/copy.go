package dump

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/moonforge/moonforge/engine/store"
)

// ErrNotEmpty: the destination store has keys and overwriting was not asked
// for.
var ErrNotEmpty = errors.New("dump: the destination store is not empty")

// Progress prints how far a copy is: a bar redrawn in place on a terminal,
// else a line every few seconds. Its methods run on the copying goroutine.
type Progress struct {
	w      io.Writer // nil: silent
	tty    bool
	label  string
	total  uint64 // keys; 0: unknown
	done   uint64
	bytes  uint64
	start  time.Time
	shown  time.Time
	period time.Duration
}

// NewProgress reports to w (nil for silence); total is the number of keys
// expected, 0 when unknown.
func NewProgress(w io.Writer, label string, total uint64) *Progress {
	p := &Progress{w: w, label: label, total: total, start: time.Now(), period: 5 * time.Second}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty, p.period = true, 100*time.Millisecond
		}
	}
	return p
}

// Add counts keys copied and their bytes.
func (p *Progress) Add(keys, bytes uint64) {
	p.done += keys
	p.bytes += bytes
	if p.w != nil && time.Since(p.shown) >= p.period {
		p.show()
	}
}

// Finish prints the final state.
func (p *Progress) Finish() {
	if p.w == nil {
		return
	}
	p.show()
	if p.tty {
		fmt.Fprintln(p.w)
	}
}

func (p *Progress) show() {
	p.shown = time.Now()
	elapsed := time.Since(p.start).Seconds()
	rate := 0.0
	if elapsed > 0 {
		rate = float64(p.done) / elapsed
	}
	line := fmt.Sprintf("%s %d keys, %.1f MiB, %.0f keys/s", p.label, p.done, float64(p.bytes)/(1<<20), rate)
	if p.total > 0 {
		const width = 30
		frac := min(1, float64(p.done)/float64(p.total))
		n := int(frac * width)
		line = fmt.Sprintf("%s [%s%s] %3.0f%% %d/%d keys, %.1f MiB, %.0f keys/s", p.label,
			strings.Repeat("=", n), strings.Repeat(" ", width-n), frac*100, p.done, p.total, float64(p.bytes)/(1<<20), rate)
	}
	if p.tty {
		fmt.Fprintf(p.w, "\r%s", line)
	} else {
		fmt.Fprintln(p.w, line)
	}
}

// Export writes every key of s to w as a dump file.
func Export(ctx context.Context, s store.Store, w io.Writer, p *Progress) (uint64, error) {
	d := NewWriter(w)
	err := s.Scan(ctx, "", func(key string, value []byte) error {
		if err := d.Add(key, value); err != nil {
			return fmt.Errorf("dump: write: %w", err)
		}
		p.Add(1, uint64(len(key)+len(value)))
		return nil
	})
	if err != nil {
		return d.count, err
	}
	if err := d.Close(); err != nil {
		return d.count, fmt.Errorf("dump: write: %w", err)
	}
	p.Finish()
	return d.count, nil
}

// Count returns the number of keys of s and their bytes.
func Count(ctx context.Context, s store.Store) (keys, bytes uint64, err error) {
	err = s.Scan(ctx, "", func(key string, value []byte) error {
		keys++
		bytes += uint64(len(key) + len(value))
		return nil
	})
	return keys, bytes, err
}

var errHasKeys = errors.New("has keys")

// checkEmpty returns ErrNotEmpty, naming a key, if s has any.
func checkEmpty(ctx context.Context, s store.Store) error {
	var first string
	err := s.Scan(ctx, "", func(key string, _ []byte) error {
		first = key
		return errHasKeys
	})
	if errors.Is(err, errHasKeys) {
		return fmt.Errorf("%w (it has %q, and maybe more); pass -overwrite to write over its keys", ErrNotEmpty, first)
	}
	return err
}

// Import verifies the dump file in r, then writes its keys to s. Nothing is
// written when the file is damaged, or, unless overwrite, when s is not
// empty.
func Import(ctx context.Context, r io.ReadSeeker, s store.Store, overwrite bool, p *Progress) (uint64, error) {
	total, _, err := Verify(r)
	if err != nil {
		return 0, err
	}
	p.total = total
	if !overwrite {
		if err := checkEmpty(ctx, s); err != nil {
			return 0, err
		}
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	b := newBatcher(s, p)
	if _, err := Read(r, func(key string, value []byte) error { return b.add(ctx, key, value) }); err != nil {
		return b.written, err
	}
	if err := b.flush(ctx); err != nil {
		return b.written, err
	}
	p.Finish()
	return b.written, nil
}

// Copy writes every key of src to dst. Unless overwrite, dst must be empty.
func Copy(ctx context.Context, src, dst store.Store, overwrite bool, p *Progress) (uint64, error) {
	total, _, err := Count(ctx, src)
	if err != nil {
		return 0, err
	}
	p.total = total
	if !overwrite {
		if err := checkEmpty(ctx, dst); err != nil {
			return 0, err
		}
	}
	b := newBatcher(dst, p)
	if err := src.Scan(ctx, "", func(key string, value []byte) error { return b.add(ctx, key, value) }); err != nil {
		return b.written, err
	}
	if err := b.flush(ctx); err != nil {
		return b.written, err
	}
	p.Finish()
	return b.written, nil
}

// batcher groups puts into batches within the destination's limits.
type batcher struct {
	s        store.Store
	p        *Progress
	caps     store.Capabilities
	ops      []store.Op
	bytes    int
	maxOps   int
	maxBytes int
	written  uint64
}

func newBatcher(s store.Store, p *Progress) *batcher {
	c := s.Capabilities()
	return &batcher{s: s, p: p, caps: c, maxOps: min(256, c.MaxBatchOps), maxBytes: min(4<<20, c.MaxBatchBytes)}
}

func (b *batcher) add(ctx context.Context, key string, value []byte) error {
	if len(value) > b.caps.MaxValueLen {
		return fmt.Errorf("%w: key %q has %d bytes, the %s store takes at most %d", store.ErrValueTooLarge, key, len(value), b.caps.Backend, b.caps.MaxValueLen)
	}
	size := len(key) + len(value)
	if len(b.ops) > 0 && (len(b.ops) == b.maxOps || b.bytes+size > b.maxBytes) {
		if err := b.flush(ctx); err != nil {
			return err
		}
	}
	b.ops = append(b.ops, store.Op{Key: key, Value: append([]byte(nil), value...)})
	b.bytes += size
	return nil
}

func (b *batcher) flush(ctx context.Context) error {
	if len(b.ops) == 0 {
		return nil
	}
	if err := b.s.Batch(ctx, b.ops); err != nil {
		return fmt.Errorf("dump: writing keys %q to %q: %w", b.ops[0].Key, b.ops[len(b.ops)-1].Key, err)
	}
	b.written += uint64(len(b.ops))
	b.p.Add(uint64(len(b.ops)), uint64(b.bytes))
	b.ops, b.bytes = b.ops[:0], 0
	return nil
}
