package front

import "time"

// RouteTimeout overrides the pool's hard timeout for matching paths.
type RouteTimeout struct {
	Pattern string // * matches any run of characters, slashes included
	Timeout time.Duration
}

// timeoutFor returns the timeout of the first pattern matching path, or 0
// (the pool's default).
func (h *Handler) timeoutFor(path string) time.Duration {
	for _, rt := range h.cfg.RouteTimeouts {
		if wildcard(rt.Pattern, path) {
			return rt.Timeout
		}
	}
	return 0
}

// wildcard matches s against a pattern where * stands for any run of
// characters. Greedy with backtracking to the last star: linear in
// practice, no regexp on the request path.
func wildcard(pattern, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case p < len(pattern) && pattern[p] == s[i]:
			p++
			i++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
