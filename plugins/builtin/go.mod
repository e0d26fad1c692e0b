module github.com/crosscast/crosscast/plugins/builtin

go 1.26.8

require github.com/crosscast/crosscast/sdk v0.0.0

require (
	github.com/emersion/go-msgauth v0.7.0
	golang.org/x/crypto v0.31.0 // indirect
)

replace github.com/crosscast/crosscast/sdk => ../../sdk
