module example.com/caps

go 1.26.8

require github.com/crosscast/crosscast/sdk v0.0.0

replace github.com/crosscast/crosscast/sdk => ../../../../sdk
