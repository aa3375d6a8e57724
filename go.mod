module corral

go 1.26.0

require (
	github.com/pelletier/go-toml/v2 v2.4.3
	github.com/pires/go-proxyproto v0.15.0
	github.com/spf13/pflag v1.0.10
	golang.org/x/sys v0.49.0
)
