package python

import (
	"regexp"
	"sync"
)

// versionRE finds the __version__ assignment in corral/__init__.py.
var versionRE = regexp.MustCompile(`(?m)^__version__\s*=\s*["']([^"'\s]+)["']\s*$`)

// Version returns corral's version: the __version__ of the corral package
// the binary carries. That line of python/corral/__init__.py is the one
// place the version is written. The binary reports it (main.version,
// unless overridden with -ldflags "-X main.version=…"), the workers'
// runtime reports it as corral.__version__, and the wheel's metadata is
// read from the same line (pypi/pyproject.toml), so go build, go install,
// scripts/wheel and scripts/release all agree without passing it along.
// It is "unknown" if the line is missing, which a test forbids.
var Version = sync.OnceValue(func() string {
	src, err := pkg.ReadFile("corral/__init__.py")
	if err != nil {
		return "unknown"
	}
	m := versionRE.FindSubmatch(src)
	if m == nil {
		return "unknown"
	}
	return string(m[1])
})
