package importer

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
	"unicode/utf8"
)

// xmlScanner is a minimal pull tokenizer for the flat, machine-written XML
// of worksheet and shared-string parts. encoding/xml allocates for every
// token and attribute; this one hands out slices of its buffer, which
// makes a 100,000-row workbook several times cheaper to read. It does not
// validate: it only has to find elements, attributes and text, and never
// loop or panic on hostile input (fuzzed).
type xmlScanner struct {
	r    *bufio.Reader
	text []byte // text before the current tag
	name []byte // local name of the current tag, without any prefix
	attr []byte // raw attribute bytes of the current start tag
	end  bool   // current tag is </name>
	self bool   // current tag is <name/>
	tag  []byte
}

const maxXMLToken = 1 << 20

var errXMLToken = errors.New("xml token longer than 1 MiB")

func newXMLScanner(r io.Reader) *xmlScanner {
	return &xmlScanner{r: bufio.NewReaderSize(r, 64<<10)}
}

// next advances to the next tag, leaving the text before it in s.text.
// Comments, processing instructions, declarations and CDATA are skipped
// (their text is dropped).
func (s *xmlScanner) next() error {
	s.text = s.text[:0]
	for {
		chunk, err := s.r.ReadSlice('<')
		if len(s.text)+len(chunk) > maxXMLToken {
			return errXMLToken
		}
		s.text = append(s.text, chunk...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return err
		}
		break
	}
	s.text = s.text[:len(s.text)-1] // the '<'
	s.tag = s.tag[:0]
	for {
		chunk, err := s.r.ReadSlice('>')
		if len(s.tag)+len(chunk) > maxXMLToken {
			return errXMLToken
		}
		s.tag = append(s.tag, chunk...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return err
		}
		break
	}
	t := s.tag[:len(s.tag)-1]
	if len(t) > 0 && (t[0] == '!' || t[0] == '?') {
		if bytes.HasPrefix(t, []byte("!--")) && !bytes.HasSuffix(t, []byte("--")) {
			// A comment containing '>': read on to its real end.
			for !bytes.HasSuffix(s.tag, []byte("-->")) {
				chunk, err := s.r.ReadSlice('>')
				if len(s.tag)+len(chunk) > maxXMLToken {
					return errXMLToken
				}
				s.tag = append(s.tag, chunk...)
				if err != nil && err != bufio.ErrBufferFull {
					return err
				}
			}
		}
		s.name, s.attr, s.end, s.self = nil, nil, false, false
		return nil
	}
	s.end = len(t) > 0 && t[0] == '/'
	if s.end {
		t = t[1:]
	}
	s.self = len(t) > 0 && t[len(t)-1] == '/'
	if s.self {
		t = t[:len(t)-1]
	}
	i := bytes.IndexAny(t, " \t\r\n")
	if i < 0 {
		i = len(t)
	}
	s.name, s.attr = t[:i], t[i:]
	if j := bytes.LastIndexByte(s.name, ':'); j >= 0 {
		s.name = s.name[j+1:]
	}
	return nil
}

func (s *xmlScanner) is(name string) bool { return string(s.name) == name }

// attrValue finds an attribute by local name in the current start tag.
func (s *xmlScanner) attrValue(name string) ([]byte, bool) {
	a := s.attr
	for len(a) > 0 {
		a = bytes.TrimLeft(a, " \t\r\n")
		eq := bytes.IndexByte(a, '=')
		if eq < 0 {
			return nil, false
		}
		key := bytes.TrimSpace(a[:eq])
		if j := bytes.LastIndexByte(key, ':'); j >= 0 {
			key = key[j+1:]
		}
		rest := bytes.TrimLeft(a[eq+1:], " \t\r\n")
		if len(rest) == 0 || (rest[0] != '"' && rest[0] != '\'') {
			return nil, false
		}
		end := bytes.IndexByte(rest[1:], rest[0])
		if end < 0 {
			return nil, false
		}
		if string(key) == name {
			return rest[1 : 1+end], true
		}
		a = rest[2+end:]
	}
	return nil, false
}

// unescapeXML decodes the five predefined entities and character
// references; anything else is kept as written.
func unescapeXML(dst []byte, b []byte) []byte {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '&')
		if i < 0 {
			return append(dst, b...)
		}
		dst = append(dst, b[:i]...)
		b = b[i:]
		semi := bytes.IndexByte(b, ';')
		if semi < 0 || semi > 12 {
			dst = append(dst, '&')
			b = b[1:]
			continue
		}
		ent := b[1:semi]
		switch string(ent) {
		case "amp":
			dst = append(dst, '&')
		case "lt":
			dst = append(dst, '<')
		case "gt":
			dst = append(dst, '>')
		case "quot":
			dst = append(dst, '"')
		case "apos":
			dst = append(dst, '\'')
		default:
			var n uint64
			var err error = strconv.ErrSyntax
			if len(ent) > 1 && ent[0] == '#' {
				if ent[1] == 'x' || ent[1] == 'X' {
					n, err = strconv.ParseUint(string(ent[2:]), 16, 32)
				} else {
					n, err = strconv.ParseUint(string(ent[1:]), 10, 32)
				}
			}
			if err != nil || n > utf8.MaxRune {
				dst = append(dst, b[:semi+1]...)
			} else {
				dst = utf8.AppendRune(dst, rune(n))
			}
		}
		b = b[semi+1:]
	}
	return dst
}
