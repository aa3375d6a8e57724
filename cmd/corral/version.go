package main

import "corral/python"

// buildVersion is set at build time with -ldflags "-X main.buildVersion=…";
// empty, the version is the runtime's (corralVersion).
var buildVersion string

// corralVersion is the version corral reports. It is written once, as
// __version__ in python/corral/__init__.py, which the binary embeds;
// buildVersion overrides it.
func corralVersion() string {
	if buildVersion != "" {
		return buildVersion
	}
	return python.Version()
}
