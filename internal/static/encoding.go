package static

import (
	"strconv"
	"strings"
)

// negotiate picks the content coding to send from available (in order of
// preference) given the request's Accept-Encoding values (RFC 9110,
// section 12.5.3). It returns "" for the file as it is (identity).
//
// A coding is acceptable when listed with q > 0, or matched by "*" with
// q > 0. Among acceptable codings the highest q wins, ties going to the
// earlier in available; it is sent unless the client ranks identity
// strictly higher, by listing it or "*". Unlisted, identity ranks last. Without an Accept-Encoding
// field the file is sent as it is: clients that send none rarely decode.
// When the client refuses identity and accepts no available coding, the
// file is still sent as it is, as nginx does: a 406 helps nobody.
func negotiate(values []string, available []string) string {
	if len(values) == 0 {
		return ""
	}
	q := make(map[string]float64, 4)
	for _, v := range values {
		for item := range strings.SplitSeq(v, ",") {
			coding, weight, ok := parseCoding(item)
			if !ok {
				continue
			}
			if coding == "x-gzip" { // an old alias (RFC 9110, section 8.4.1.3)
				coding = "gzip"
			}
			if old, seen := q[coding]; !seen || weight > old {
				q[coding] = weight
			}
		}
	}
	// Unlisted codings get the weight of "*", or 0; unlisted identity is
	// acceptable but ranks below any acceptable coding (-1).
	qOf := func(coding string, unlisted float64) float64 {
		if w, ok := q[coding]; ok {
			return w
		}
		if w, ok := q["*"]; ok {
			return w
		}
		return unlisted
	}
	best, bestQ := "", 0.0
	for _, c := range available {
		if w := qOf(c, 0); w > bestQ {
			best, bestQ = c, w
		}
	}
	if best == "" || qOf("identity", -1) > bestQ {
		return ""
	}
	return best
}

// parseCoding parses one element of Accept-Encoding: a coding name and an
// optional ";q=" weight between 0 and 1. Malformed elements are skipped.
func parseCoding(item string) (coding string, q float64, ok bool) {
	name, params, _ := strings.Cut(item, ";")
	coding = strings.ToLower(strings.TrimSpace(name))
	if coding == "" {
		return "", 0, false
	}
	q = 1
	for p := range strings.SplitSeq(params, ";") {
		k, v, found := strings.Cut(strings.TrimSpace(p), "=")
		if !found || !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		w, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || !(w >= 0 && w <= 1) { // also refuses NaN
			return "", 0, false
		}
		q = w
	}
	return coding, q, true
}
