module github.com/crosscast/crosscast/sdk

go 1.26.8
