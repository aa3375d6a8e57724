package python

import (
	"regexp"
	"testing"
)

// TestVersion: corral/__init__.py states a version the binary can read,
// and it is one pip accepts as a release version (PEP 440, the subset
// corral uses: N.N.N with an optional pre-release, post or dev part).
func TestVersion(t *testing.T) {
	v := Version()
	pep440 := regexp.MustCompile(`^\d+\.\d+\.\d+((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?$`)
	if !pep440.MatchString(v) {
		t.Fatalf("Version() = %q: python/corral/__init__.py needs a line __version__ = \"N.N.N\"", v)
	}
}

func TestVersionRE(t *testing.T) {
	for src, want := range map[string]string{
		"__version__ = \"1.2.3\"\n":         "1.2.3",
		"x = 1\n__version__ = '0.2.0rc1'\n": "0.2.0rc1",
		"__version__=\"2.0.0.dev3\"":        "2.0.0.dev3",
		"# __version__ = \"9.9.9\"\n":       "",
		"__version__ = get_version()\n":     "",
		"    __version__ = \"1.0.0\"\n":     "",
	} {
		got := ""
		if m := versionRE.FindStringSubmatch(src); m != nil {
			got = m[1]
		}
		if got != want {
			t.Errorf("version of %q = %q, want %q", src, got, want)
		}
	}
}
