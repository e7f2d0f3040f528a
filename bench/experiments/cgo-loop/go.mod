module cgoloop

go 1.24

require github.com/mapcore/mapcore-go v0.0.0

replace github.com/mapcore/mapcore-go => ../../../go-binding
