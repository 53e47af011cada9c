package planner

import (
	"encoding/json"
	"errors"
	"strconv"
)

// errSlowPath makes fastDecode give up; DecodeEstate then uses
// encoding/json for the whole document, so the fast path never changes
// what an estate means, only how quickly the common shape is read.
var errSlowPath = errors.New("use encoding/json")

// fastDecode reads the top-level object by hand: "hosts" goes to
// encoding/json (a fifth of the bytes, nested), "connections" — a million
// flat objects at scale, most of the decoding time through reflection — is
// parsed directly. Anything outside the plain shape (escapes, nulls,
// unknown or differently-cased keys, floats in integer fields) returns
// errSlowPath.
func fastDecode(data []byte, e *Estate) error {
	d := &scanner{b: data}
	if !d.consume('{') {
		return errSlowPath
	}
	if d.consume('}') {
		return d.end()
	}
	for {
		key, ok := d.plainString()
		if !ok || !d.consume(':') {
			return errSlowPath
		}
		start := d.ws()
		switch key {
		case "hosts":
			if !d.skipValue() {
				return errSlowPath
			}
			if err := json.Unmarshal(data[start:d.i], &e.Hosts); err != nil {
				return errSlowPath
			}
		case "connections":
			if err := d.connections(&e.Connections); err != nil {
				return err
			}
		default:
			// encoding/json matches keys case-insensitively; keep its meaning.
			return errSlowPath
		}
		if d.consume(',') {
			continue
		}
		if d.consume('}') {
			return d.end()
		}
		return errSlowPath
	}
}

type scanner struct {
	b []byte
	i int
}

func (d *scanner) ws() int {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return d.i
		}
	}
	return d.i
}

func (d *scanner) consume(c byte) bool {
	d.ws()
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

func (d *scanner) end() error {
	d.ws()
	if d.i != len(d.b) {
		return errSlowPath
	}
	return nil
}

// plainString reads a string without escapes or control characters.
func (d *scanner) plainString() (string, bool) {
	d.ws()
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		return "", false
	}
	j := d.i + 1
	for j < len(d.b) {
		c := d.b[j]
		if c == '"' {
			s := string(d.b[d.i+1 : j])
			d.i = j + 1
			return s, true
		}
		if c == '\\' || c < 0x20 || c >= 0x80 {
			// Escapes and non-ASCII (which encoding/json validates as UTF-8) go the slow way.
			return "", false
		}
		j++
	}
	return "", false
}

func (d *scanner) integer() (int64, bool) {
	d.ws()
	j := d.i
	if j < len(d.b) && d.b[j] == '-' {
		j++
	}
	k := j
	for k < len(d.b) && d.b[k] >= '0' && d.b[k] <= '9' {
		k++
	}
	if k == j || k < len(d.b) && (d.b[k] == '.' || d.b[k] == 'e' || d.b[k] == 'E') || (d.b[j] == '0' && k-j > 1) {
		return 0, false
	}
	v, err := strconv.ParseInt(string(d.b[d.i:k]), 10, 64)
	if err != nil {
		return 0, false
	}
	d.i = k
	return v, true
}

// skipValue steps over one JSON value without consuming what follows it.
// It tracks strings and nesting only; encoding/json validates the values
// it is given.
func (d *scanner) skipValue() bool {
	d.ws()
	depth := 0
	for d.i < len(d.b) {
		switch c := d.b[d.i]; c {
		case '"':
			d.i++
			for d.i < len(d.b) && d.b[d.i] != '"' {
				if d.b[d.i] == '\\' {
					d.i++
				}
				d.i++
			}
			if d.i >= len(d.b) {
				return false
			}
			d.i++
			if depth == 0 {
				return true
			}
		case '{', '[':
			depth++
			d.i++
		case '}', ']':
			if depth == 0 {
				return true // the end of the enclosing value
			}
			depth--
			d.i++
			if depth == 0 {
				return true
			}
		case ',':
			if depth == 0 {
				return true
			}
			d.i++
		default:
			d.i++
		}
	}
	return depth == 0
}

func (d *scanner) connections(out *[]Connection) error {
	if !d.consume('[') {
		return errSlowPath
	}
	*out = (*out)[:0]
	if d.consume(']') {
		return nil
	}
	for {
		var c Connection
		if !d.consume('{') {
			return errSlowPath
		}
		if !d.consume('}') {
			for {
				key, ok := d.plainString()
				if !ok || !d.consume(':') {
					return errSlowPath
				}
				switch key {
				case "src", "dst", "dst_address", "protocol", "process":
					s, ok := d.plainString()
					if !ok {
						return errSlowPath
					}
					switch key {
					case "src":
						c.Src = s
					case "dst":
						c.Dst = s
					case "dst_address":
						c.DstAddress = s
					case "protocol":
						c.Protocol = s
					default:
						c.Process = s
					}
				case "port", "count", "bytes":
					v, ok := d.integer()
					if !ok {
						return errSlowPath
					}
					switch key {
					case "port":
						if v != int64(int(v)) {
							return errSlowPath
						}
						c.Port = int(v)
					case "count":
						c.Count = v
					default:
						c.Bytes = v
					}
				default:
					return errSlowPath
				}
				if d.consume(',') {
					continue
				}
				if d.consume('}') {
					break
				}
				return errSlowPath
			}
		}
		*out = append(*out, c)
		if d.consume(',') {
			continue
		}
		if d.consume(']') {
			return nil
		}
		return errSlowPath
	}
}
