package playerdata

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/moonforge/moonforge/engine/store"
)

func entry(i int) Entry {
	return Entry{Lease: store.PlayerKey("p", "lease"), Token: uint64(i), Ops: []store.Op{
		{Key: store.PlayerKey("p", "a"), Value: []byte(fmt.Sprint(i))},
		{Key: store.PlayerKey("p", "b"), Delete: true},
		{Key: store.PlayerKey("p", "c"), Value: []byte{}},
	}}
}

func TestJournalRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j", "journal")
	j, rec, _, err := OpenJournal(path, 1<<20)
	if err != nil || len(rec) != 0 {
		t.Fatalf("new journal: %v, %d entries", err, len(rec))
	}
	for i := 1; i <= 5; i++ {
		if seq, err := j.Append(entry(i)); err != nil || seq != uint64(i) {
			t.Fatalf("Append %d: seq %d, %v", i, seq, err)
		}
	}
	if err := j.Ack(1); err != nil {
		t.Fatal(err)
	}
	if err := j.Ack(3); err != nil {
		t.Fatalf("an ack out of order: %v", err)
	}
	if err := j.Ack(3); err == nil {
		t.Fatal("a second ack of one entry was taken")
	}
	if err := j.Ack(42); err == nil {
		t.Fatal("an ack of an unknown entry was taken")
	}
	if got := len(j.Pending()); got != 3 {
		t.Fatalf("%d pending after two acks of five", got)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j, rec, discarded, err := OpenJournal(path, 1<<20)
	if err != nil || discarded != 0 {
		t.Fatal(err, discarded)
	}
	defer j.Close()
	// An ack is not written to disk: a reopened journal replays from the
	// last truncation (applying an entry twice, in order, gives the same
	// result).
	if len(rec) != 5 {
		t.Fatalf("reopened: %d entries, want 5", len(rec))
	}
	for i, e := range rec {
		want := entry(i + 1)
		want.Seq = uint64(i + 1)
		for k := range want.Ops {
			if want.Ops[k].Delete {
				want.Ops[k].Value = []byte{}
			}
		}
		if !reflect.DeepEqual(e, want) {
			t.Fatalf("entry %d = %+v, want %+v", i, e, want)
		}
	}
	if seq, _ := j.Append(entry(6)); seq != 6 {
		t.Fatalf("seq after reopen = %d, want 6", seq)
	}
	for _, seq := range []uint64{6, 2, 4, 1, 3, 5} {
		if err := j.Ack(seq); err != nil {
			t.Fatal(err)
		}
	}
	if st, _ := os.Stat(path); st.Size() != int64(len(journalMagic)) {
		t.Fatalf("a fully acknowledged journal is %d bytes", st.Size())
	}
}

func TestJournalTornTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal")
	j, _, _, err := OpenJournal(path, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		if _, err := j.Append(entry(i)); err != nil {
			t.Fatal(err)
		}
	}
	j.Close()
	raw, _ := os.ReadFile(path)
	for _, cut := range []int{1, 5, 9, len(raw) / 6} {
		if err := os.WriteFile(path, raw[:len(raw)-cut], 0o600); err != nil {
			t.Fatal(err)
		}
		j, rec, discarded, err := OpenJournal(path, 1<<20)
		if err != nil || len(rec) != 2 || discarded == 0 {
			t.Fatalf("cut %d: %d entries, %d discarded, %v; want 2 and a discarded tail", cut, len(rec), discarded, err)
		}
		if seq, err := j.Append(entry(9)); err != nil || seq != 3 {
			t.Fatalf("append after a torn tail: %d, %v", seq, err)
		}
		j.Close()
	}
	flipped := bytes.Clone(raw)
	flipped[len(raw)-2] ^= 0x40
	_ = os.WriteFile(path, flipped, 0o600)
	_, rec, _, err := OpenJournal(path, 1<<20)
	if err != nil || len(rec) != 2 {
		t.Fatalf("damaged last record: %d entries, %v", len(rec), err)
	}
	_ = os.WriteFile(path, []byte("not a journal"), 0o600)
	if _, _, _, err := OpenJournal(path, 1<<20); err == nil {
		t.Fatal("a file that is no journal was opened")
	}
}

func TestJournalBoundedAndCompacted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal")
	j, _, _, err := OpenJournal(path, 2048)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	n := 0
	for ; ; n++ {
		_, err := j.Append(entry(n))
		if errors.Is(err, ErrJournalFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if n < 10 {
		t.Fatalf("only %d entries fit in 2 KiB", n)
	}
	for seq := uint64(1); seq <= uint64(n)/2+1; seq++ {
		if err := j.Ack(seq); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := j.Append(entry(99)); err != nil {
		t.Fatalf("append after acks freed half: %v", err)
	}
	j2, rec, _, err := OpenJournal(path+"2", 2048)
	if err != nil {
		t.Fatal(err)
	}
	j2.Close()
	_ = rec
	if got := len(j.Pending()); got != n-(n/2+1)+1 {
		t.Fatalf("%d pending, want %d", got, n-(n/2+1)+1)
	}
	j.Close()
	_, rec, _, err = OpenJournal(path, 2048)
	if err != nil || len(rec) != n-(n/2+1)+1 || rec[0].Seq != uint64(n/2+2) {
		t.Fatalf("after a rewrite: %d entries from seq %d, %v", len(rec), rec[0].Seq, err)
	}
}

func FuzzReadJournal(f *testing.F) {
	var buf bytes.Buffer
	path := filepath.Join(f.TempDir(), "journal")
	j, _, _, _ := OpenJournal(path, 1<<20)
	_, _ = j.Append(entry(1))
	_, _ = j.Append(entry(2))
	j.Close()
	raw, _ := os.ReadFile(path)
	buf.Write(raw)
	f.Add(buf.Bytes())
	f.Add([]byte(journalMagic))
	f.Add([]byte(journalMagic + "\x00\x00\x00\x05\x00\x00\x00\x00hello"))
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, good, err := ReadJournal(bytes.NewReader(b))
		if err != nil {
			return
		}
		if good > int64(len(b)) {
			t.Fatalf("good part %d is past the end %d", good, len(b))
		}
		again, good2, err := ReadJournal(bytes.NewReader(b[:good]))
		if err != nil || good2 != good || len(again) != len(entries) {
			t.Fatalf("the good part does not read back the same: %d/%d entries, %v", len(again), len(entries), err)
		}
		for _, e := range entries {
			if e.Lease == "" || len(e.Lease) > store.MaxKeyLen {
				t.Fatalf("entry with a bad lease key %q", e.Lease)
			}
			for _, op := range e.Ops {
				if op.Key == "" || len(op.Key) > store.MaxKeyLen || len(op.Value) > store.MaxValueLen {
					t.Fatalf("op out of limits")
				}
			}
		}
	})
}
