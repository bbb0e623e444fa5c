package store

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"sync"
)

// A record is one key's file in the file store:
//
//	magic     4 bytes  "LDKV"
//	version   1 byte   fileRecordVersion
//	expires   8 bytes  int64 big-endian, Unix ms, 0 = no expiry
//	keyLen    4 bytes  uint32 big-endian, 1..MaxKeyBytes
//	key       keyLen bytes
//	valueLen  8 bytes  uint64 big-endian
//	value     valueLen bytes
//	crc       4 bytes  CRC-32C (Castagnoli) of everything before it
//
// The key is stored in full so hashed file names can be resolved and a
// misplaced or colliding file detected. Every field has one encoding and
// the lengths must add up to the file size exactly, so a record that decodes
// re-encodes to the same bytes. The checksum turns a torn or bit-flipped file
// into ErrCorrupt instead of a wrong value.

const (
	fileRecordMagic   = "LDKV"
	fileRecordVersion = 1
	// fileRecordFixed is the size of a record with an empty key and value.
	fileRecordFixed = 4 + 1 + 8 + 4 + 8 + 4
	// fileRecordHeaderMax is the most bytes needed to read a record's key
	// and deadline and the value's length.
	fileRecordHeaderMax = 4 + 1 + 8 + 4 + MaxKeyBytes + 8
)

// fileCRCTable is CRC-32C, which has hardware support on amd64 and arm64.
// It is built on first use, not at package init: every livedict command
// links this package, most never touch the file backend, and building the
// table costs about 0.15 ms.
var fileCRCTable = sync.OnceValue(func() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) })

// fileRecord is a decoded record. Value is nil when only the header was read.
type fileRecord struct {
	ExpiresAt int64
	Key       string
	Value     []byte
	// ValueLen is the stored value's length, known even from the header.
	ValueLen int64
}

// fileRecordEncode returns the record bytes for one entry.
func fileRecordEncode(expiresAt int64, key string, value []byte) []byte {
	buf := make([]byte, 0, fileRecordFixed+len(key)+len(value))
	buf = append(buf, fileRecordMagic...)
	buf = append(buf, fileRecordVersion)
	buf = binary.BigEndian.AppendUint64(buf, uint64(expiresAt))
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(key)))
	buf = append(buf, key...)
	buf = binary.BigEndian.AppendUint64(buf, uint64(len(value)))
	buf = append(buf, value...)
	return binary.BigEndian.AppendUint32(buf, crc32.Checksum(buf, fileCRCTable()))
}

// fileRecordDecode decodes and verifies a whole record. Errors wrap
// ErrCorrupt; the caller adds the file name. The value aliases data.
func fileRecordDecode(data []byte) (fileRecord, error) {
	rec, valueAt, err := fileRecordDecodeHeader(data, int64(len(data)))
	if err != nil {
		return fileRecord{}, err
	}
	end := len(data) - 4
	if got, want := crc32.Checksum(data[:end], fileCRCTable()), binary.BigEndian.Uint32(data[end:]); got != want {
		return fileRecord{}, fmt.Errorf("%w: record checksum mismatch", ErrCorrupt)
	}
	rec.Value = data[valueAt:end:end]
	return rec, nil
}

// fileRecordDecodeHeader decodes the start of a record whose file is size
// bytes long, without the value and without verifying the checksum; it lets
// listings skip reading large values. head may be the whole record or just
// its first bytes. It returns the offset of the value. All lengths are
// checked against size before use, so a damaged length can neither panic
// nor make anyone allocate a huge buffer.
func fileRecordDecodeHeader(head []byte, size int64) (fileRecord, int, error) {
	if size < fileRecordFixed+1 || int64(len(head)) > size {
		return fileRecord{}, 0, fmt.Errorf("%w: record truncated (%d bytes)", ErrCorrupt, size)
	}
	if len(head) < 4+1+8+4 {
		return fileRecord{}, 0, fmt.Errorf("%w: record header truncated", ErrCorrupt)
	}
	if string(head[:4]) != fileRecordMagic {
		return fileRecord{}, 0, fmt.Errorf("%w: not a livedict record (bad magic)", ErrCorrupt)
	}
	if head[4] != fileRecordVersion {
		return fileRecord{}, 0, fmt.Errorf("%w: unknown record version %d", ErrCorrupt, head[4])
	}
	expiresAt := int64(binary.BigEndian.Uint64(head[5:13]))
	keyLen := int64(binary.BigEndian.Uint32(head[13:17]))
	if keyLen < 1 || keyLen > MaxKeyBytes {
		return fileRecord{}, 0, fmt.Errorf("%w: record key length %d out of range", ErrCorrupt, keyLen)
	}
	keyAt := int64(17)
	lenAt := keyAt + keyLen
	valueAt := lenAt + 8
	if valueAt+4 > size {
		return fileRecord{}, 0, fmt.Errorf("%w: record truncated (%d bytes)", ErrCorrupt, size)
	}
	if int64(len(head)) < valueAt {
		return fileRecord{}, 0, fmt.Errorf("%w: record header truncated", ErrCorrupt)
	}
	key := string(head[keyAt:lenAt])
	if err := ValidateKey(key); err != nil {
		return fileRecord{}, 0, fmt.Errorf("%w: record holds a bad key", ErrCorrupt)
	}
	valueLen := binary.BigEndian.Uint64(head[lenAt:valueAt])
	if valueLen > math.MaxInt64 || int64(valueLen) != size-valueAt-4 {
		return fileRecord{}, 0, fmt.Errorf("%w: record value length %d does not match the file size %d", ErrCorrupt, valueLen, size)
	}
	return fileRecord{ExpiresAt: expiresAt, Key: key, ValueLen: int64(valueLen)}, int(valueAt), nil
}
