package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
	"github.com/spf13/pflag"

	"corral/internal/addrset"
	"corral/internal/logformat"
)

// Layers of settings, lowest precedence first.
const (
	layerDefault = iota
	layerFile
	layerEnv
	layerFlag
)

// setting is one value for an option from one source.
type setting struct {
	opt   *option
	value any
	layer int
	src   string // for messages: "--workers", "CORRAL_WORKERS", `corral.toml: key "workers"`
}

// Load builds the configuration from args (the command line without the
// program name), environ (KEY=VALUE entries, as os.Environ returns) and the
// config file found from cwd (the working directory, which relative paths
// are resolved against). Sources take precedence in this order: flags,
// CORRAL_* environment variables, the config file, defaults. A list set by
// a higher source replaces the lower one's entirely.
//
// Load returns ErrHelp or ErrVersion when -h/--help or -v/--version is given,
// before reading any file; the caller prints Usage() or the version. Any
// other error lists every problem found (errors.Join), each naming the
// option and where its value came from; bad settings are *Error values.
// Load reads the config file and nothing else: it opens no sockets and
// starts nothing.
func Load(args, environ []string, cwd string) (*Config, error) {
	return load(options, args, environ, cwd)
}

// LoadSettings is Load for the commands that read a server's settings
// without serving it (corral journal): the app may be missing.
func LoadSettings(args, environ []string, cwd string) (*Config, error) {
	return loadWith(options, args, environ, cwd, false)
}

// load is Load with the option table as a parameter, for tests.
func load(table []option, args, environ []string, cwd string) (*Config, error) {
	return loadWith(table, args, environ, cwd, true)
}

func loadWith(table []option, args, environ []string, cwd string, needApp bool) (*Config, error) {
	flagSets, err := parseFlags(table, args)
	if err != nil {
		return nil, err
	}
	env := environMap(environ)
	envSets, warnings, errs := parseEnv(table, env)

	// The config file is named by -c or CORRAL_CONFIG, else discovered.
	var named *setting
	for _, sets := range [][]setting{envSets, flagSets} {
		for i := range sets {
			if sets[i].opt.name == "config" {
				named = &sets[i]
			}
		}
	}
	fileSets, file, guardRaw, fileErrs := readConfigFile(table, named, cwd)
	errs = append(errs, fileErrs...)

	c := &Config{cwd: cwd, virtualEnv: env["VIRTUAL_ENV"], Warnings: warnings, GuardFile: DefaultGuard()}
	if guardRaw != nil {
		errs = append(errs, parseGuard(guardRaw.value, guardRaw.display, &c.GuardFile)...)
	}
	sources := make(map[string]setting, len(table))
	for i := range table {
		o := &table[i]
		def := o.def
		if o.defFunc != nil {
			def = o.defFunc()
		}
		v, err := parseDefault(o, def)
		if err != nil {
			// The table is wrong: a programming error, caught by the tests.
			panic(fmt.Sprintf("config: default of %s: %v", o.name, err))
		}
		s := setting{opt: o, value: v, layer: layerDefault, src: o.name + " (default)"}
		assign(c, s)
		sources[o.name] = s
	}
	for _, layer := range [][]setting{fileSets, envSets, flagSets} {
		for _, s := range layer {
			assign(c, s)
			sources[s.opt.name] = s
		}
	}
	c.ConfigFile = file
	c.bindSet = sources["bind"].layer != layerDefault

	// A file that could not be read or decoded may well hold the app: do
	// not also complain that it is missing.
	requireApp := needApp && (file != "" || len(fileErrs) == 0)
	errs = append(errs, validate(table, c, sources, requireApp)...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if c.GuardStore == "" {
		c.GuardStore = c.GuardFile.Store
	}
	for i := range c.Static {
		m := &c.Static[i]
		if !filepath.IsAbs(m.Dir) {
			m.Dir = filepath.Join(c.Chdir, m.Dir)
		}
		m.Dir = c.abs(m.Dir)
	}
	return c, nil
}

// parseDefault parses a default from the table; "" is the zero value.
func parseDefault(o *option, def string) (any, error) {
	if def != "" {
		return parseText(o, def, true)
	}
	switch o.kind {
	case kindInt:
		return 0, nil
	case kindBool:
		return false, nil
	case kindDuration:
		return time.Duration(0), nil
	case kindSize:
		return int64(0), nil
	case kindList:
		return []string{}, nil
	}
	return "", nil
}

// assign stores s.value in the Config field of s.opt.
func assign(c *Config, s setting) {
	switch p := s.opt.field(c).(type) {
	case *string:
		*p = s.value.(string)
	case *int:
		*p = s.value.(int)
	case *bool:
		*p = s.value.(bool)
	case *time.Duration:
		*p = s.value.(time.Duration)
	case *int64:
		*p = s.value.(int64)
	case *[]string:
		*p = slices.Clone(s.value.([]string))
	default:
		panic(fmt.Sprintf("config: option %s: unsupported field type %T", s.opt.name, p))
	}
}

// assignTyped stores v, the parsed form of o's value, in o's typed field.
func assignTyped(c *Config, o *option, v any) {
	switch p := o.typed(c).(type) {
	case *addrset.Set:
		*p = v.(addrset.Set)
	case *[]Bind:
		*p = v.([]Bind)
	case *os.FileMode:
		*p = v.(os.FileMode)
	case *tls.ClientAuthType:
		*p = v.(tls.ClientAuthType)
	case *[]RouteTimeout:
		*p = v.([]RouteTimeout)
	case *[]StaticMount:
		*p = v.([]StaticMount)
	case *[]logformat.Part:
		*p = v.([]logformat.Part)
	case *string:
		*p = v.(string)
	default:
		panic(fmt.Sprintf("config: option %s: unsupported typed field %T", o.name, p))
	}
}

// value reads the Config field of o.
func value(c *Config, o *option) any {
	switch p := o.field(c).(type) {
	case *string:
		return *p
	case *int:
		return *p
	case *bool:
		return *p
	case *time.Duration:
		return *p
	case *int64:
		return *p
	case *[]string:
		return *p
	}
	panic(fmt.Sprintf("config: option %s: unsupported field type", o.name))
}

// flagValue is the pflag.Value of one option: it parses each occurrence
// and collects them, so a list flag can be repeated.
type flagValue struct {
	opt *option
	val any
	set bool
}

func (f *flagValue) String() string { return "" }
func (f *flagValue) Type() string   { return f.opt.arg }

func (f *flagValue) Set(s string) error {
	v, err := parseText(f.opt, s, f.opt.split)
	if err != nil {
		return err
	}
	if f.opt.kind == kindList && f.set {
		v = append(f.val.([]string), v.([]string)...)
	}
	f.val, f.set = v, true
	return nil
}

// parseFlags parses the command line into settings, the APP argument
// included. It returns ErrHelp or ErrVersion when those flags are given.
func parseFlags(table []option, args []string) ([]setting, error) {
	fs := pflag.NewFlagSet("corral", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		return pflag.NormalizedName(normName(name))
	})
	help := fs.BoolP("help", "h", false, "")
	version := fs.BoolP("version", "v", false, "")
	values := make([]*flagValue, len(table))
	for i := range table {
		o := &table[i]
		if o.positional {
			continue
		}
		values[i] = &flagValue{opt: o}
		f := fs.VarPF(values[i], o.name, o.short, o.help)
		if o.kind == kindBool {
			f.NoOptDefVal = "true"
		}
	}
	if err := fs.Parse(args); err != nil {
		var notExist *pflag.NotExistError
		if errors.As(err, &notExist) && notExist.GetSpecifiedShortnames() == "" {
			if s := suggest(table, notExist.GetSpecifiedName(), func(o *option) bool { return !o.positional }); s != "" {
				return nil, fmt.Errorf("%w (did you mean --%s?); see corral --help", err, s)
			}
		}
		return nil, fmt.Errorf("%w; see corral --help", err)
	}
	if *help {
		return nil, ErrHelp
	}
	if *version {
		return nil, ErrVersion
	}
	var sets []setting
	for i, fv := range values {
		if fv != nil && fv.set {
			sets = append(sets, setting{opt: &table[i], value: fv.val, layer: layerFlag, src: "--" + table[i].name})
		}
	}
	switch rest := fs.Args(); len(rest) {
	case 0:
	case 1:
		for i := range table {
			if table[i].positional {
				sets = append(sets, setting{opt: &table[i], value: rest[0], layer: layerFlag, src: "argument APP"})
			}
		}
	default:
		return nil, fmt.Errorf("too many arguments %q: APP is the only one; see corral --help", rest)
	}
	return sets, nil
}

// environMap turns KEY=VALUE entries into a map; a later entry wins.
func environMap(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// parseEnv reads the CORRAL_* variables. Unknown ones become warnings.
// Lists are comma-separated.
func parseEnv(table []option, env map[string]string) (sets []setting, warnings []string, errs []error) {
	names := make([]string, 0, len(env))
	for k := range env {
		if strings.HasPrefix(k, "CORRAL_") {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		var o *option
		for i := range table {
			if table[i].envName() == name {
				o = &table[i]
			}
		}
		if o == nil {
			w := name + ": unknown variable, ignored"
			if s := suggest(table, strings.ToLower(strings.TrimPrefix(name, "CORRAL_")), nil); s != "" {
				w += " (did you mean " + lookup(table, s).envName() + "?)"
			}
			warnings = append(warnings, w)
			continue
		}
		v, err := parseText(o, env[name], true)
		if err != nil {
			errs = append(errs, &Error{Source: name, Err: err})
			continue
		}
		sets = append(sets, setting{opt: o, value: v, layer: layerEnv, src: name})
	}
	return sets, warnings, errs
}

// readConfigFile finds and reads the config file: the one named by -c or
// CORRAL_CONFIG, else corral.toml in cwd, else pyproject.toml in cwd. A
// file named pyproject.toml is read from its [tool.corral] table. It
// returns the settings, the absolute path of the file read ("" if none)
// and its [guard] table, if any (nil if none).
func readConfigFile(table []option, named *setting, cwd string) ([]setting, string, *rawTable, []error) {
	var path, display string
	if named != nil {
		display = named.value.(string)
		path = display
		if !filepath.IsAbs(path) {
			path = filepath.Join(cwd, path)
		}
		if display == "" {
			return nil, "", nil, []error{&Error{Source: named.src, Err: errors.New("empty file name")}}
		}
	} else {
		for _, name := range []string{"corral.toml", "pyproject.toml"} {
			p := filepath.Join(cwd, name)
			_, err := os.Stat(p)
			if err == nil {
				path, display = p, name
				break
			}
			if !errors.Is(err, fs.ErrNotExist) {
				return nil, "", nil, []error{fmt.Errorf("config file: %w", err)}
			}
		}
		if path == "" {
			return nil, "", nil, nil
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		if named != nil {
			return nil, "", nil, []error{&Error{Source: named.src, Err: err}}
		}
		return nil, "", nil, []error{fmt.Errorf("config file: %w", err)}
	}
	var doc map[string]any
	if err := toml.Unmarshal(data, &doc); err != nil {
		var derr *toml.DecodeError
		if errors.As(err, &derr) {
			line, col := derr.Position()
			err = fmt.Errorf("line %d, column %d: %w", line, col, err)
		}
		return nil, "", nil, []error{&Error{Source: display, Err: err}}
	}
	if filepath.Base(path) == "pyproject.toml" {
		display += " [tool.corral]"
		tool, _ := doc["tool"].(map[string]any)
		t, ok := tool["corral"]
		if !ok {
			return nil, "", nil, nil // a pyproject.toml without [tool.corral] is fine
		}
		if doc, ok = t.(map[string]any); !ok {
			return nil, "", nil, []error{&Error{Source: display, Err: fmt.Errorf("want a table, got %s", describe(t))}}
		}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	var guard *rawTable
	for k, v := range doc {
		if normName(k) == "guard" {
			guard = &rawTable{value: v, display: display}
			delete(doc, k)
		}
	}
	sets, errs := parseFile(table, doc, display)
	return sets, abs, guard, errs
}

// rawTable is a table of the config file read apart from the options.
type rawTable struct {
	value   any
	display string // the file's name, for messages
}

// parseFile turns the keys of a config-file table into settings.
func parseFile(table []option, doc map[string]any, display string) ([]setting, []error) {
	keys := make([]string, 0, len(doc))
	for k := range doc {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sets []setting
	var errs []error
	seen := map[string]string{}
	for _, key := range keys {
		o := lookup(table, key)
		if o == nil || o.noFile {
			msg := fmt.Sprintf("unknown key %q", key)
			if o != nil {
				msg = fmt.Sprintf("key %q cannot be set in a config file", key)
			} else if s := suggest(table, key, func(o *option) bool { return !o.noFile }); s != "" {
				if strings.Contains(key, "_") {
					s = strings.ReplaceAll(s, "-", "_")
				}
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			errs = append(errs, &Error{Source: display, Err: errors.New(msg)})
			continue
		}
		if prev, dup := seen[o.name]; dup {
			errs = append(errs, &Error{Source: display, Err: fmt.Errorf("keys %q and %q both set %s", prev, key, o.name)})
			continue
		}
		seen[o.name] = key
		src := fmt.Sprintf("%s: key %q", display, key)
		v, err := parseTOML(o, doc[key])
		if err != nil {
			errs = append(errs, &Error{Source: src, Err: err})
			continue
		}
		sets = append(sets, setting{opt: o, value: v, layer: layerFile, src: src})
	}
	return sets, errs
}

// validate checks the merged configuration. It normalises choices to
// lower case and resolves the request-head limits.
func validate(table []option, c *Config, sources map[string]setting, requireApp bool) []error {
	var errs []error
	bad := make(map[string]bool)
	fail := func(o *option, err error) {
		errs = append(errs, &Error{Source: sources[o.name].src, Err: err})
		bad[o.name] = true
	}
	for i := range table {
		o := &table[i]
		v := value(c, o)
		switch x := v.(type) {
		case int:
			if x < 0 {
				fail(o, fmt.Errorf("must not be negative, got %d", x))
				continue
			}
		case int64:
			if x < 0 {
				fail(o, fmt.Errorf("must not be negative, got %d", x))
				continue
			}
		case time.Duration:
			if x < 0 {
				fail(o, fmt.Errorf("must not be negative, got %s", x))
				continue
			}
		}
		if len(o.choices) > 0 {
			s := strings.ToLower(strings.TrimSpace(v.(string)))
			if !slices.Contains(o.choices, s) {
				fail(o, fmt.Errorf("want one of %s, got %q", strings.Join(o.choices, ", "), v))
				continue
			}
			assign(c, setting{opt: o, value: s})
			v = s
		}
		if o.check != nil {
			if err := o.check(v); err != nil {
				fail(o, err)
				continue
			}
		}
		if o.parse != nil {
			t, err := o.parse(v)
			if err != nil {
				fail(o, err)
				continue
			}
			assignTyped(c, o, t)
		}
	}
	if !bad["worker-class"] && !bad["interface"] && ASGIWorkerClass(c.WorkerClass) {
		switch c.Interface {
		case "auto":
			c.Interface = "asgi"
		case "wsgi":
			errs = append(errs, &Error{Source: sources["interface"].src,
				Err: fmt.Errorf("wsgi contradicts the ASGI worker class %q (%s)", c.WorkerClass, sources["worker-class"].src)})
		}
	}
	if requireApp && strings.TrimSpace(c.App) == "" {
		errs = append(errs, fmt.Errorf("%w: pass it as the argument, set CORRAL_APP, or set app in corral.toml or in [tool.corral] of pyproject.toml", ErrNoApp))
	}
	if !bad["limit-request-line"] && !bad["limit-request-fields"] && !bad["limit-request-field_size"] {
		if err := resolveLimits(table, c, sources); err != nil {
			errs = append(errs, err)
		}
	}
	return append(errs, checkTLS(c, sources)...)
}

// checkTLS checks the TLS options against each other: each names what it
// needs, from the source that set it.
func checkTLS(c *Config, sources map[string]setting) []error {
	var errs []error
	need := func(name, why string) {
		errs = append(errs, &Error{Source: sources[name].src, Err: errors.New(why)})
	}
	if c.CertFile == "" {
		for _, name := range []string{"keyfile", "ca-certs"} {
			if sources[name].layer != layerDefault && value(c, sources[name].opt) != "" {
				need(name, "needs --certfile: it configures TLS, which --certfile turns on")
			}
		}
		if c.CertReqs != tls.NoClientCert {
			need("cert-reqs", "needs --certfile and --ca-certs: client certificates are asked for over TLS")
		}
		return errs
	}
	if c.CertReqs != tls.NoClientCert && c.CACerts == "" {
		need("cert-reqs", "needs --ca-certs: the authorities client certificates are checked against")
	}
	if c.H2C {
		need("h2c", "has no effect with --certfile: every listener uses TLS, which negotiates HTTP/2 by itself")
	}
	return errs
}

// resolveLimits replaces 0 in the request-head limits by the largest value
// that fits and checks that the three together fit in a worker frame. When
// they do not, the error names the option set by the highest-precedence
// source.
func resolveLimits(table []option, c *Config, sources map[string]setting) error {
	line, fields, size := c.LimitRequestLine, c.LimitRequestFields, c.LimitRequestFieldSize
	if line == 0 {
		line = maxRequestLine
	}
	room := int64(frameLimit - headReserve - 3*line)
	blame := ""
	switch {
	case fields == 0 && size == 0:
		size = defaultFieldSize
		fields = int(min(room/int64(size+fieldOverhead), maxRequestFields))
	case fields == 0:
		fields = int(min(room/int64(size+fieldOverhead), maxRequestFields))
		blame = "limit-request-field_size"
	case size == 0:
		size = int(min(room/int64(fields)-fieldOverhead, frameLimit))
		blame = "limit-request-fields"
	}
	if fields >= 1 && size >= 1 && headBytes(line, fields, size) <= frameLimit {
		c.LimitRequestLine, c.LimitRequestFields, c.LimitRequestFieldSize = line, fields, size
		return nil
	}
	if blame == "" {
		best := -1
		for _, name := range []string{"limit-request-fields", "limit-request-field_size", "limit-request-line"} {
			if l := sources[name].layer; l > best {
				best, blame = l, name
			}
		}
	}
	var most int64
	switch blame {
	case "limit-request-fields":
		most = room / int64(size+fieldOverhead)
	case "limit-request-field_size":
		most = room/int64(max(fields, 1)) - fieldOverhead
	default:
		most = (frameLimit - headReserve - int64(fields)*int64(size+fieldOverhead)) / 3
	}
	o := lookup(table, blame)
	got := value(c, o).(int)
	others := map[string]string{
		"limit-request-fields":     fmt.Sprintf("limit-request-fields %d", fields),
		"limit-request-field_size": fmt.Sprintf("limit-request-field_size %d", size),
		"limit-request-line":       fmt.Sprintf("limit-request-line %d", line),
	}
	delete(others, blame)
	with := make([]string, 0, 2)
	for _, name := range []string{"limit-request-fields", "limit-request-field_size", "limit-request-line"} {
		if s, ok := others[name]; ok {
			with = append(with, s)
		}
	}
	const why = "a request head must fit in a 1 MiB worker frame"
	if most < 1 {
		return &Error{Source: sources[blame].src, Err: fmt.Errorf("%d does not fit: with %s, %s; lower them", got, strings.Join(with, " and "), why)}
	}
	return &Error{Source: sources[blame].src, Err: fmt.Errorf("must be at most %d with %s (%s), got %d", most, strings.Join(with, " and "), why, got)}
}

// suggest returns the option name closest to name (compared with _ and -
// folded), or "" if none is close. keep filters the candidates; nil keeps
// all.
func suggest(table []option, name string, keep func(*option) bool) string {
	n := normName(strings.ToLower(name))
	best, bestDist := "", 3
	if len(n) <= 4 {
		bestDist = 2
	}
	for i := range table {
		o := &table[i]
		if keep != nil && !keep(o) {
			continue
		}
		if d := distance(n, normName(o.name)); d < bestDist {
			best, bestDist = o.name, d
		}
	}
	return best
}

// distance is the Levenshtein edit distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
