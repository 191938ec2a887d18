// Package dump moves all of a store's keys between backends, or to and from
// a dump file, for `moonforge data export`, `import` and `copy`.
//
// A dump file is the magic line "MFDUMP1\n", then one record per key:
// 'K', the key's length (uvarint), the key, the value's length (uvarint),
// the value; then the trailer: 'E', the number of records (uvarint) and the
// CRC-32 (IEEE, big-endian) of every byte before it. Keys are in byte order.
// Versions and TTLs are not kept: an imported key is at a new version, with
// no TTL.
package dump

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"

	"github.com/moonforge/moonforge/engine/store"
)

const magic = "MFDUMP1\n"

// ErrCorrupt: a dump file that is not one, truncated, or damaged.
var ErrCorrupt = errors.New("dump: corrupt file")

// Writer writes a dump file. Not safe for concurrent use.
type Writer struct {
	w     *bufio.Writer
	crc   hash.Hash32
	count uint64
	err   error
}

// NewWriter writes the file's header to w.
func NewWriter(w io.Writer) *Writer {
	d := &Writer{w: bufio.NewWriterSize(w, 1<<20), crc: crc32.NewIEEE()}
	d.write([]byte(magic))
	return d
}

func (d *Writer) write(b []byte) {
	if d.err != nil {
		return
	}
	d.crc.Write(b)
	_, d.err = d.w.Write(b)
}

// Add appends one key.
func (d *Writer) Add(key string, value []byte) error {
	var n [binary.MaxVarintLen64]byte
	d.write([]byte{'K'})
	d.write(n[:binary.PutUvarint(n[:], uint64(len(key)))])
	d.write([]byte(key))
	d.write(n[:binary.PutUvarint(n[:], uint64(len(value)))])
	d.write(value)
	d.count++
	return d.err
}

// Close writes the trailer and flushes; it does not close the underlying
// writer.
func (d *Writer) Close() error {
	var n [binary.MaxVarintLen64]byte
	d.write([]byte{'E'})
	d.write(n[:binary.PutUvarint(n[:], d.count)])
	if d.err != nil {
		return d.err
	}
	if err := binary.Write(d.w, binary.BigEndian, d.crc.Sum32()); err != nil {
		return err
	}
	return d.w.Flush()
}

// Read calls fn for each key of the dump file in r, in order, checking
// each record's shape as it goes and the trailer (count and checksum) at the
// end. Use Verify before applying a file, so that a damaged file changes
// nothing. Keys and values are limited to store.MaxKeyLen and
// store.MaxValueLen; value is valid only during fn.
func Read(r io.Reader, fn func(key string, value []byte) error) (count uint64, err error) {
	hr := &hashReader{br: bufio.NewReaderSize(r, 1<<20), crc: crc32.NewIEEE()}
	head := make([]byte, len(magic))
	if _, err := io.ReadFull(hr, head); err != nil || string(head) != magic {
		return 0, fmt.Errorf("%w: not a Moonforge dump (no %q header)", ErrCorrupt, magic[:7])
	}
	var value []byte
	for {
		tag, err := hr.ReadByte()
		if err != nil {
			return count, fmt.Errorf("%w: truncated after %d keys", ErrCorrupt, count)
		}
		switch tag {
		case 'K':
			key, err := readField(hr, store.MaxKeyLen, nil)
			if err == nil && len(key) == 0 {
				err = errors.New("empty key")
			}
			if err != nil {
				return count, fmt.Errorf("%w: key %d: %v", ErrCorrupt, count+1, err)
			}
			k := string(key)
			if value, err = readField(hr, store.MaxValueLen, value); err != nil {
				return count, fmt.Errorf("%w: value of key %d: %v", ErrCorrupt, count+1, err)
			}
			if err := fn(k, value); err != nil {
				return count, err
			}
			count++
		case 'E':
			n, err := binary.ReadUvarint(hr)
			if err != nil || n != count {
				return count, fmt.Errorf("%w: the trailer counts %d keys, the file has %d", ErrCorrupt, n, count)
			}
			sum := hr.crc.Sum32()
			var want [4]byte
			if _, err := io.ReadFull(hr.br, want[:]); err != nil {
				return count, fmt.Errorf("%w: no checksum", ErrCorrupt)
			}
			if binary.BigEndian.Uint32(want[:]) != sum {
				return count, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
			}
			if _, err := hr.br.ReadByte(); err != io.EOF {
				return count, fmt.Errorf("%w: bytes after the trailer", ErrCorrupt)
			}
			return count, nil
		default:
			return count, fmt.Errorf("%w: unknown record tag %q after %d keys", ErrCorrupt, tag, count)
		}
	}
}

// Verify reads the whole file and reports whether it is intact, with its
// number of keys and bytes of keys and values.
func Verify(r io.Reader) (count, size uint64, err error) {
	count, err = Read(r, func(key string, value []byte) error {
		size += uint64(len(key) + len(value))
		return nil
	})
	return count, size, err
}

// hashReader hashes the bytes it hands out (not those bufio reads ahead).
type hashReader struct {
	br  *bufio.Reader
	crc hash.Hash32
}

func (h *hashReader) Read(p []byte) (int, error) {
	n, err := h.br.Read(p)
	h.crc.Write(p[:n])
	return n, err
}

func (h *hashReader) ReadByte() (byte, error) {
	b, err := h.br.ReadByte()
	if err == nil {
		h.crc.Write([]byte{b})
	}
	return b, err
}

// readField reads a uvarint length, at most limit, then that many bytes
// into buf's storage.
func readField(hr *hashReader, limit int, buf []byte) ([]byte, error) {
	n, err := binary.ReadUvarint(hr)
	if err != nil {
		return nil, fmt.Errorf("length: %v", err)
	}
	if n > uint64(limit) {
		return nil, fmt.Errorf("length %d is over the limit of %d", n, limit)
	}
	if uint64(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(hr, buf); err != nil {
		return nil, fmt.Errorf("truncated")
	}
	return buf, nil
}
