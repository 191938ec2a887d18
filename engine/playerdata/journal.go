package playerdata

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/moonforge/moonforge/engine/store"
)

// Journal errors.
var (
	// ErrJournalFull: an append would take the journal past its size limit.
	ErrJournalFull = errors.New("playerdata: journal full")
)

const (
	journalMagic = "MFJRNL1\n"
	// maxRecord bounds one record: a batch of a player's keys.
	maxRecord = 64 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Entry is one journaled write: a batch of ops fenced by the lease at Lease
// with token Token.
type Entry struct {
	Seq   uint64
	Lease string
	Token uint64
	Ops   []store.Op
}

// Journal is an append-only file of entries not yet applied to the store,
// each record checksummed, in order, bounded in size. Append returns once
// the record is on disk (fsync); Ack drops entries from the front once
// applied, and the file is truncated when none is left, or rewritten when
// the acknowledged part is most of it. Safe for concurrent use.
//
// A record is [payload length: u32 BE][CRC-32C of payload: u32 BE][payload];
// the payload is seq, lease key, token, and the ops (see encode). A torn last
// record (a crash during an append, which was then never acknowledged) ends
// the journal when it is read back.
type Journal struct {
	mu      sync.Mutex
	path    string
	f       *os.File
	max     int64
	size    int64
	acked   int64 // bytes of acknowledged records at the front of the file
	pending []pendingEntry
	next    uint64
	// Group commit: appends write under mu, then sync under syncMu; one
	// fsync covers every append written before it started.
	syncMu sync.Mutex
	synced int64  // file size covered by the last fsync, in generation gen
	gen    uint64 // changes when reset or rewrite replace the file's content (and sync it)
}

type pendingEntry struct {
	Entry
	bytes int64
	done  bool
}

// OpenJournal opens or creates the journal at path, bounded to max bytes,
// and returns the entries it holds (those not acknowledged before a crash or
// stop), oldest first. The returned discarded counts bytes of a torn or
// damaged tail that were dropped.
func OpenJournal(path string, max int64) (j *Journal, recovered []Entry, discarded int64, err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, nil, 0, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("playerdata: journal: %w", err)
	}
	j = &Journal{path: path, f: f, max: max, next: 1}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, 0, err
	}
	if st.Size() == 0 {
		if err := j.reset(); err != nil {
			f.Close()
			return nil, nil, 0, err
		}
		return j, nil, 0, nil
	}
	entries, good, err := ReadJournal(io.NewSectionReader(f, 0, st.Size()))
	if err != nil {
		f.Close()
		return nil, nil, 0, fmt.Errorf("playerdata: journal %s: %w", path, err)
	}
	for _, e := range entries {
		j.pending = append(j.pending, pendingEntry{Entry: e.Entry, bytes: e.bytes})
		j.next = max64(j.next, e.Seq+1)
	}
	if err := f.Truncate(good); err != nil {
		f.Close()
		return nil, nil, 0, err
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		f.Close()
		return nil, nil, 0, err
	}
	j.size = good
	j.acked = int64(len(journalMagic))
	for _, e := range entries {
		recovered = append(recovered, e.Entry)
	}
	return j, recovered, st.Size() - good, nil
}

func max64(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

// reset empties the file to its header. The caller holds mu (or owns j).
func (j *Journal) reset() error {
	if err := j.f.Truncate(0); err != nil {
		return err
	}
	if _, err := j.f.WriteAt([]byte(journalMagic), 0); err != nil {
		return err
	}
	if _, err := j.f.Seek(int64(len(journalMagic)), io.SeekStart); err != nil {
		return err
	}
	j.size, j.acked = int64(len(journalMagic)), int64(len(journalMagic))
	j.gen++
	j.synced = j.size
	return j.f.Sync()
}

// Append writes e (its Seq is assigned) and syncs the file.
func (j *Journal) Append(e Entry) (uint64, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return 0, store.ErrClosed
	}
	e.Seq = j.next
	payload := encode(e)
	if len(payload) > maxRecord {
		return 0, fmt.Errorf("%w: a record of %d bytes", store.ErrValueTooLarge, len(payload))
	}
	rec := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint32(rec, uint32(len(payload)))
	binary.BigEndian.PutUint32(rec[4:], crc32.Checksum(payload, castagnoli))
	rec = append(rec, payload...)
	if j.size+int64(len(rec)) > j.max {
		return 0, fmt.Errorf("%w: %d of %d bytes used", ErrJournalFull, j.size-j.acked, j.max)
	}
	if _, err := j.f.Write(rec); err != nil {
		return 0, fmt.Errorf("playerdata: journal: %w", err)
	}
	j.size += int64(len(rec))
	j.next++
	j.pending = append(j.pending, pendingEntry{Entry: e, bytes: int64(len(rec))})
	end, gen := j.size, j.gen
	j.mu.Unlock()
	err := j.sync(end, gen)
	j.mu.Lock()
	return e.Seq, err
}

// sync returns once the file is synced up to end (in generation gen).
func (j *Journal) sync(end int64, gen uint64) error {
	j.syncMu.Lock()
	defer j.syncMu.Unlock()
	j.mu.Lock()
	if j.gen != gen || j.synced >= end { // rewritten and synced since, or covered
		j.mu.Unlock()
		return nil
	}
	f, size, g := j.f, j.size, j.gen
	j.mu.Unlock()
	if f == nil {
		return store.ErrClosed
	}
	err := f.Sync()
	j.mu.Lock()
	if err != nil && j.gen == g {
		j.mu.Unlock()
		return fmt.Errorf("playerdata: journal: %w", err)
	}
	if j.gen == g {
		j.synced = max(j.synced, size)
	}
	j.mu.Unlock()
	return nil
}

// Pending returns the entries not yet acknowledged, oldest first.
func (j *Journal) Pending() []Entry {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := make([]Entry, 0, len(j.pending))
	for _, p := range j.pending {
		if !p.done {
			out = append(out, p.Entry)
		}
	}
	return out
}

// Ack marks entry seq done: it was applied, or refused for good. Entries
// may be acknowledged in any order; the file shrinks from the front.
func (j *Journal) Ack(seq uint64) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	i, found := slices.BinarySearchFunc(j.pending, seq, func(p pendingEntry, seq uint64) int { return cmp.Compare(p.Seq, seq) })
	if !found || j.pending[i].done {
		return fmt.Errorf("playerdata: journal: ack of %d, which is not pending", seq)
	}
	j.pending[i].done = true
	for len(j.pending) > 0 && j.pending[0].done {
		j.acked += j.pending[0].bytes
		j.pending = j.pending[1:]
	}
	switch {
	case len(j.pending) == 0:
		return j.reset()
	case j.acked > j.max/2:
		return j.rewrite()
	}
	return nil
}

// rewrite replaces the file by one holding only the pending entries.
func (j *Journal) rewrite() error {
	tmp := j.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	w.WriteString(journalMagic)
	size := int64(len(journalMagic))
	for _, p := range j.pending {
		if p.done {
			continue
		}
		payload := encode(p.Entry)
		var h [8]byte
		binary.BigEndian.PutUint32(h[:], uint32(len(payload)))
		binary.BigEndian.PutUint32(h[4:], crc32.Checksum(payload, castagnoli))
		w.Write(h[:])
		w.Write(payload)
		size += int64(8 + len(payload))
	}
	if err := errors.Join(w.Flush(), f.Sync()); err != nil {
		f.Close()
		return err
	}
	if err := os.Rename(tmp, j.path); err != nil {
		f.Close()
		return err
	}
	if d, err := os.Open(filepath.Dir(j.path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	_ = j.f.Close()
	j.f, j.size, j.acked = f, size, int64(len(journalMagic))
	j.gen++
	j.synced = size
	_, err = f.Seek(size, io.SeekStart)
	return err
}

// Close closes the file; pending entries stay in it for the next open.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return store.ErrClosed
	}
	err := j.f.Close()
	j.f = nil
	return err
}

// encode lays out an entry's payload: seq, lease key, token, the number of
// ops, and each op: flags (1: delete), key, value. Integers are uvarints,
// strings a uvarint length then the bytes.
func encode(e Entry) []byte {
	b := binary.AppendUvarint(nil, e.Seq)
	b = appendBytes(b, []byte(e.Lease))
	b = binary.AppendUvarint(b, e.Token)
	b = binary.AppendUvarint(b, uint64(len(e.Ops)))
	for _, op := range e.Ops {
		flags := byte(0)
		if op.Delete {
			flags = 1
		}
		b = append(b, flags)
		b = appendBytes(b, []byte(op.Key))
		b = appendBytes(b, op.Value)
	}
	return b
}

func appendBytes(b, s []byte) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// readEntry is an entry read back, with its record's size.
type readEntry struct {
	Entry
	bytes int64
}

// ReadJournal reads the records of a journal file. It stops at the first
// record that is torn or fails its checksum, and returns the entries before
// it and the offset where the good part ends. Only a missing or wrong header
// is an error.
func ReadJournal(r io.Reader) (entries []readEntry, good int64, err error) {
	br := bufio.NewReader(r)
	head := make([]byte, len(journalMagic))
	if _, err := io.ReadFull(br, head); err != nil || string(head) != journalMagic {
		return nil, 0, errors.New("not a Moonforge journal (bad header)")
	}
	good = int64(len(journalMagic))
	for {
		var h [8]byte
		if _, err := io.ReadFull(br, h[:]); err != nil {
			return entries, good, nil
		}
		n := binary.BigEndian.Uint32(h[:])
		if n == 0 || n > maxRecord {
			return entries, good, nil
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(br, payload); err != nil {
			return entries, good, nil
		}
		if crc32.Checksum(payload, castagnoli) != binary.BigEndian.Uint32(h[4:]) {
			return entries, good, nil
		}
		e, ok := decode(payload)
		if !ok {
			return entries, good, nil
		}
		entries = append(entries, readEntry{Entry: e, bytes: int64(8 + n)})
		good += int64(8 + n)
	}
}

// decode parses a payload of encode; ok is false for a malformed one.
func decode(b []byte) (e Entry, ok bool) {
	d := decoder{b: b}
	e.Seq = d.uvarint()
	e.Lease = string(d.bytes(store.MaxKeyLen))
	e.Token = d.uvarint()
	n := d.uvarint()
	if n > uint64(len(b)) { // every op takes at least one byte
		return Entry{}, false
	}
	e.Ops = make([]store.Op, 0, n)
	for range n {
		flags := d.byte()
		key := string(d.bytes(store.MaxKeyLen))
		value := d.bytes(store.MaxValueLen)
		if d.bad || flags > 1 || key == "" {
			return Entry{}, false
		}
		e.Ops = append(e.Ops, store.Op{Key: key, Value: value, Delete: flags == 1})
	}
	if d.bad || len(d.b) != 0 || e.Lease == "" {
		return Entry{}, false
	}
	return e, true
}

type decoder struct {
	b   []byte
	bad bool
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.bad = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.bad = true
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) bytes(limit int) []byte {
	n := d.uvarint()
	if d.bad || n > uint64(limit) || n > uint64(len(d.b)) {
		d.bad = true
		return nil
	}
	out := append([]byte{}, d.b[:n]...)
	d.b = d.b[n:]
	return out
}
