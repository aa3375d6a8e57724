package guard

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
)

// RouteSet is the "routes" object of a worker's HELLO (docs/PROTOCOL.md).
type RouteSet struct {
	Framework string   `json:"framework"`
	Routes    []Route  `json:"routes"`
	Prefixes  []string `json:"prefixes"`
	Warnings  []string `json:"warnings"`
}

// Route is one URL pattern the app answers.
type Route struct {
	Rule     string   `json:"rule"`
	Regex    string   `json:"regex"`
	Methods  []string `json:"methods"`
	Endpoint string   `json:"endpoint"`
	Static   bool     `json:"static"`
}

// ParseRoutes decodes HELLO's routes; null (or empty input) gives nil: the
// app's routes are unknown and the guard learns them from answers.
func ParseRoutes(raw []byte) (*RouteSet, error) {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return nil, nil
	}
	var rs RouteSet
	if err := json.Unmarshal(raw, &rs); err != nil {
		return nil, fmt.Errorf("routes: %w", err)
	}
	return &rs, nil
}

// Matcher tells whether a path belongs to one of the app's routes. It is
// immutable once compiled and safe for concurrent use.
type Matcher struct {
	exact    map[string]int // literal routes: path → rule index
	buckets  map[string][]compiled
	generic  []compiled // patterns whose literal prefix has no first segment
	prefixes []string   // sorted longest first
	rules    []string
	n        int // patterns compiled
}

type compiled struct {
	re   *regexp.Regexp
	rule int
}

// Compile builds a matcher from the app's routes (nil = none extracted)
// and extra prefixes (static mounts), which match themselves and every
// path below them. A route whose regex does not compile becomes a prefix
// (its literal part), so a bad pattern errs towards known, never towards
// banning; those are returned as warnings.
func Compile(rs *RouteSet, extraPrefixes []string) (*Matcher, []string) {
	m := &Matcher{exact: map[string]int{}, buckets: map[string][]compiled{}}
	var warnings []string
	addPrefix := func(p string) {
		if p == "" {
			p = "/"
		}
		m.prefixes = append(m.prefixes, p)
	}
	for _, p := range extraPrefixes {
		p = strings.TrimRight(p, "/")
		addPrefix(p + "/")
		m.exact[p] = -1
	}
	if rs != nil {
		for _, p := range rs.Prefixes {
			addPrefix(p)
		}
		for _, r := range rs.Routes {
			idx := len(m.rules)
			m.rules = append(m.rules, r.Rule)
			re, err := regexp.Compile(r.Regex)
			if err != nil || !strings.HasPrefix(r.Regex, "^") {
				lit := literalPrefix(r.Regex)
				warnings = append(warnings, fmt.Sprintf("route %q: regex %q not usable; treating %q and below as known", r.Rule, r.Regex, lit))
				addPrefix(lit)
				continue
			}
			m.n++
			if l, ok := literalRoute(re); ok {
				m.exact[l] = idx
				continue
			}
			lit, _ := re.LiteralPrefix()
			seg := firstSegment(lit)
			c := compiled{re: re, rule: idx}
			if seg == "" {
				m.generic = append(m.generic, c)
			} else {
				m.buckets[seg] = append(m.buckets[seg], c)
			}
		}
	}
	sort.SliceStable(m.prefixes, func(i, j int) bool { return len(m.prefixes[i]) > len(m.prefixes[j]) })
	return m, warnings
}

// literalRoute recognises ^/path$ with no metacharacters (escaped ones
// allowed, like ^/robots\.txt$) and returns the path.
func literalRoute(re *regexp.Regexp) (string, bool) {
	s := re.String()
	if len(s) < 2 || s[0] != '^' || s[len(s)-1] != '$' || strings.HasSuffix(s, `\$`) {
		return "", false
	}
	body := s[1 : len(s)-1]
	lit := unquoteMeta(body)
	if regexp.QuoteMeta(lit) != body {
		return "", false
	}
	return lit, true
}

// unquoteMeta undoes regexp.QuoteMeta on a literal.
func unquoteMeta(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// literalPrefix is the part of a regex before its first metacharacter,
// without the leading ^, cut back to the last slash.
func literalPrefix(re string) string {
	re = strings.TrimPrefix(re, "^")
	i := strings.IndexAny(re, `\.+*?()|[]{}^$`)
	if i < 0 {
		i = len(re)
	}
	lit := re[:i]
	if j := strings.LastIndexByte(lit, '/'); j >= 0 {
		lit = lit[:j+1]
	}
	if lit == "" {
		lit = "/"
	}
	return lit
}

// firstSegment is the first path segment of a literal prefix if the
// prefix covers it entirely ("/user/" → "user"; "/us" → "").
func firstSegment(lit string) string {
	if !strings.HasPrefix(lit, "/") {
		return ""
	}
	rest := lit[1:]
	j := strings.IndexByte(rest, '/')
	if j <= 0 {
		return ""
	}
	return rest[:j]
}

// pathSegment is the first segment of a request path, "" if it has no
// slash after it.
func pathSegment(p string) string {
	if len(p) < 2 || p[0] != '/' {
		return ""
	}
	j := strings.IndexByte(p[1:], '/')
	if j <= 0 {
		return ""
	}
	return p[1 : 1+j]
}

// Match reports whether path belongs to a route, and which rule (-1 for
// prefixes and static mounts).
func (m *Matcher) Match(path string) (int, bool) {
	if m == nil {
		return -1, false
	}
	if i, ok := m.exact[path]; ok {
		return i, true
	}
	if seg := pathSegment(path); seg != "" {
		for _, c := range m.buckets[seg] {
			if c.re.MatchString(path) {
				return c.rule, true
			}
		}
	}
	for _, c := range m.generic {
		if c.re.MatchString(path) {
			return c.rule, true
		}
	}
	for _, p := range m.prefixes {
		if strings.HasPrefix(path, p) {
			return -1, true
		}
	}
	return -1, false
}

// Rule returns the rule of index i, "" for -1.
func (m *Matcher) Rule(i int) string {
	if m == nil || i < 0 || i >= len(m.rules) {
		return ""
	}
	return m.rules[i]
}

// Patterns is the number of route patterns compiled.
func (m *Matcher) Patterns() int {
	if m == nil {
		return 0
	}
	return m.n + len(m.exact)
}

// learned is the bounded set of paths that have answered with a status
// other than 404: what the guard knows of an app that reported no routes.
type learned struct {
	mu    sync.RWMutex
	paths map[string]struct{}
	max   int
	full  bool
}

func newLearned(max int) *learned {
	return &learned{paths: make(map[string]struct{}), max: max}
}

func (l *learned) has(p string) bool {
	l.mu.RLock()
	_, ok := l.paths[p]
	l.mu.RUnlock()
	return ok
}

// add records p; it reports whether the table just became full.
func (l *learned) add(p string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.paths[p]; ok || l.full {
		return false
	}
	if len(l.paths) >= l.max {
		l.full = true
		return true
	}
	l.paths[strings.Clone(p)] = struct{}{}
	return false
}

func (l *learned) len() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.paths)
}
