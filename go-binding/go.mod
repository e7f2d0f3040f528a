module github.com/mapcore/mapcore-go

go 1.24
