package planner

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strconv"
	"strings"
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
			hd := json.NewDecoder(bytes.NewReader(data[start:d.i]))
			hd.DisallowUnknownFields()
			if err := hd.Decode(&e.Hosts); err != nil || hd.More() {
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

// describeJSONError turns encoding/json's error into one a person can act
// on: the line and column, the path of the item (hosts[3].disks[0].used_bytes)
// and the host it belongs to. An unknown key is an error too (a misspelt
// "conections" must not silently drop every connection), named with its
// path.
func describeJSONError(data []byte, err error) error {
	var off int64 = -1
	what := err.Error()
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		off = se.Offset - 1 // the byte that broke it
		what = strings.TrimPrefix(se.Error(), "json: ")
		if what == "" {
			what = "invalid JSON after the value"
		}
	case errors.As(err, &te):
		off = te.Offset
		what = fmt.Sprintf("%s is not a valid %s", te.Value, te.Type)
	case errors.As(err, new(errTrailing)):
		off = err.(errTrailing).off
		what = "more data after the estate object"
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		off = int64(len(data))
		what = "the document ends too early"
	}
	w := walkJSON(data, off)
	if te != nil && w.off >= 0 {
		off = w.off // the start of the value, not its end
	}
	if w.unknown != "" {
		line, col := lineCol(data, w.off)
		return fmt.Errorf("estate JSON line %d, column %d%s: unknown key %q (known keys: %s)", line, col, w.where(), w.unknown, strings.Join(w.known, ", "))
	}
	if off < 0 {
		return fmt.Errorf("estate JSON: %w", err)
	}
	line, col := lineCol(data, off)
	return fmt.Errorf("estate JSON line %d, column %d%s: %s", line, col, w.where(), what)
}

// lineCol gives the 1-based line and column of byte pos.
func lineCol(data []byte, pos int64) (int, int) {
	pos = min(max(pos, 0), int64(len(data)))
	before := data[:pos]
	return bytes.Count(before, []byte("\n")) + 1, int(pos) - bytes.LastIndexByte(before, '\n')
}

// tokenStart skips the separators between the previous token and the next.
func tokenStart(data []byte, off int64) int64 {
	for off < int64(len(data)) && strings.IndexByte(" \t\r\n,:", data[off]) >= 0 {
		off++
	}
	return off
}

// jsonWalk is where walkJSON stopped: the path, the host around it, and
// the first unknown key if it met one.
type jsonWalk struct {
	path    string
	host    string
	unknown string
	known   []string
	off     int64
}

func (w jsonWalk) where() string {
	switch {
	case w.host != "" && w.path != "":
		return fmt.Sprintf(" (host %s, %s)", w.host, w.path)
	case w.path != "":
		return " (" + w.path + ")"
	}
	return ""
}

// jsonKeys are the known keys of each object of the estate format, from
// the struct tags so they cannot drift.
var jsonKeys = map[string][]string{
	"estate":     tagsOf(reflect.TypeFor[Estate]()),
	"host":       tagsOf(reflect.TypeFor[Host]()),
	"disk":       tagsOf(reflect.TypeFor[Disk]()),
	"connection": tagsOf(reflect.TypeFor[Connection]()),
}

func tagsOf(t reflect.Type) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		if tag, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); tag != "" && tag != "-" {
			out = append(out, tag)
		}
	}
	return out
}

// childSchema is the object kind inside key k of an object of kind parent.
func childSchema(parent, k string) string {
	switch {
	case parent == "estate" && strings.EqualFold(k, "hosts"):
		return "host"
	case parent == "estate" && strings.EqualFold(k, "connections"):
		return "connection"
	case parent == "host" && strings.EqualFold(k, "disks"):
		return "disk"
	}
	return ""
}

// walkJSON reads tokens until offset stop (or to the first unknown key,
// or the end), tracking the path and the id of the host it is in.
func walkJSON(data []byte, stop int64) jsonWalk {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	type frame struct {
		obj    bool
		schema string // object kind of this object, or of the elements of this array
		key    string // last key read in an object
		index  int    // next element of an array
		path   string
		hostID string
	}
	var stack []frame
	res := jsonWalk{off: -1}
	expectKey := false
	pathOf := func() string {
		if len(stack) == 0 {
			return ""
		}
		return stack[len(stack)-1].path
	}
	hostOf := func() string {
		for i := len(stack) - 1; i >= 0; i-- {
			if stack[i].obj && stack[i].schema == "host" {
				return stack[i].hostID
			}
		}
		return ""
	}
	for {
		if stop >= 0 && dec.InputOffset() >= stop {
			break
		}
		before := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			break
		}
		// The path of the value this token starts.
		valuePath, valueSchema := pathOf(), ""
		if n := len(stack); n > 0 {
			top := &stack[n-1]
			if top.obj && !expectKey {
				valuePath = joinPath(top.path, top.key)
				valueSchema = childSchema(top.schema, top.key)
			} else if !top.obj {
				valuePath = fmt.Sprintf("%s[%d]", top.path, top.index)
				valueSchema = top.schema
				top.index++
			}
		} else {
			valueSchema = "estate"
		}
		if n := len(stack); n > 0 && stack[n-1].obj && expectKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:n-1]
				expectKey = len(stack) > 0 && stack[len(stack)-1].obj
				continue
			}
			k, _ := tok.(string)
			top := &stack[n-1]
			top.key = k
			expectKey = false
			if known, ok := jsonKeys[top.schema]; ok && !slices.ContainsFunc(known, func(x string) bool { return strings.EqualFold(x, k) }) {
				res.path, res.host, res.unknown, res.known, res.off = top.path, hostOf(), k, known, tokenStart(data, before)
				return res
			}
			continue
		}
		res.path, res.host, res.off = valuePath, hostOf(), tokenStart(data, before)
		switch d := tok.(type) {
		case json.Delim:
			switch d {
			case '{':
				stack = append(stack, frame{obj: true, schema: valueSchema, path: valuePath})
				expectKey = true
				continue
			case '[':
				stack = append(stack, frame{schema: valueSchema, path: valuePath})
				expectKey = false
				continue
			default:
				stack = stack[:len(stack)-1]
			}
		case string:
			if n := len(stack); n > 0 && stack[n-1].obj && stack[n-1].schema == "host" && strings.EqualFold(stack[n-1].key, "id") {
				stack[n-1].hostID = d
			}
		}
		expectKey = len(stack) > 0 && stack[len(stack)-1].obj
	}
	return res
}

func joinPath(base, key string) string {
	if base == "" {
		return key
	}
	return base + "." + key
}

// errTrailing is data after the estate's closing brace.
type errTrailing struct{ off int64 }

func (e errTrailing) Error() string { return "more data after the estate object" }
