// Package conformance reads gunicorn's corpus of raw HTTP/1.1 requests
// (integration/testdata/conformance/gunicorn-requests), which the
// integration tests and package h1's tests replay.
package conformance

import (
	"strconv"
	"strings"
)

// Decode turns a corpus file into request bytes: the file's own newlines
// are not part of the request; \r \n \t \0 and \xHH escapes are. Any
// other backslash stays as it is.
func Decode(src []byte) []byte {
	s := strings.ReplaceAll(string(src), "\n", "")
	var out []byte
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 >= len(s) {
			out = append(out, s[i])
			continue
		}
		switch s[i+1] {
		case 'r':
			out = append(out, '\r')
		case 'n':
			out = append(out, '\n')
		case 't':
			out = append(out, '\t')
		case '0':
			out = append(out, 0)
		case 'x':
			if i+3 < len(s) {
				if b, err := strconv.ParseUint(s[i+2:i+4], 16, 8); err == nil {
					out = append(out, byte(b))
					i += 3
					continue
				}
			}
			out = append(out, s[i], s[i+1])
		default:
			out = append(out, s[i], s[i+1])
		}
		i++
	}
	return out
}
