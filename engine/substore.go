package engine

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"

	"github.com/ferry-migrate/ferry/engine/wire"
)

// subStore is the agent's file of sub-block hashes (state/ID.subs): for
// every block the hash of the block and the SubSum of each of its 4 KiB
// sub-blocks, as they were when the agent last read the block. When the
// target's manifest says the target holds that same block hash, the stored
// sub-hashes describe the target's copy too, and a changed block can travel
// as the sub-blocks that differ from them, with no exchange with the
// gateway.
//
// Every record names the block hash it describes, so the file never has to
// agree with anything else: a record whose hash is not the target's (the
// gateway crashed before a checkpoint, another agent synced the disk, the
// file was torn) is simply not used, and a wrong record that slipped
// through is caught by the gateway, which checks a patch's base and result
// hashes and then asks for the whole block. Records of zero blocks stay
// holes, so the file is as sparse as the disk; it costs 16 + 4 bytes per
// 4 KiB sub-block, about 1/1000 of the disk's allocated size.
type subStore struct {
	f   *os.File
	n   int // sub-blocks per block
	rec int // record size
}

const (
	subStoreMagic  = "FSUB\x00\x01"
	subStoreHeader = 64
)

// openSubStore opens (creating, or resetting when its block size differs)
// the store at path for blocks of bs bytes.
func openSubStore(path string, bs int) (*subStore, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sub-block store: %w", err)
	}
	s := &subStore{f: f, n: wire.SubBlocks(bs)}
	s.rec = 16 + 4*s.n
	var hdr [subStoreHeader]byte
	copy(hdr[:], subStoreMagic)
	binary.BigEndian.PutUint32(hdr[8:], uint32(bs))
	var cur [subStoreHeader]byte
	if _, err := io.ReadFull(f, cur[:]); err != nil || cur != hdr {
		// New, from another block size or damaged: start empty.
		if err := f.Truncate(0); err != nil {
			f.Close()
			return nil, fmt.Errorf("sub-block store: %w", err)
		}
		if _, err := f.WriteAt(hdr[:], 0); err != nil {
			f.Close()
			return nil, fmt.Errorf("sub-block store: %w", err)
		}
	}
	return s, nil
}

func (s *subStore) Close() error { return s.f.Close() }

// read returns the record of block i into subs (len n); ok is false when
// the record is empty or unreadable. buf is scratch of at least s.rec bytes.
func (s *subStore) read(i int, subs []uint32, buf []byte) (h wire.Hash, ok bool) {
	buf = buf[:s.rec]
	if n, _ := s.f.ReadAt(buf, subStoreHeader+int64(i)*int64(s.rec)); n != s.rec {
		return h, false
	}
	copy(h[:], buf[:16])
	for k := range subs {
		subs[k] = binary.BigEndian.Uint32(buf[16+4*k:])
	}
	return h, !h.IsZero()
}

// write stores block i's hash and sub-hashes (a short last block leaves
// the tail of its record zero).
func (s *subStore) write(i int, h wire.Hash, subs []uint32, buf []byte) error {
	buf = buf[:s.rec]
	clear(buf)
	copy(buf, h[:])
	for k, v := range subs {
		binary.BigEndian.PutUint32(buf[16+4*k:], v)
	}
	_, err := s.f.WriteAt(buf, subStoreHeader+int64(i)*int64(s.rec))
	return err
}
