module mapcore-bench/go

go 1.24.0

require (
	github.com/VictoriaMetrics/fastcache v1.13.0
	github.com/allegro/bigcache/v3 v3.1.0
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/golang/snappy v1.0.0 // indirect
	golang.org/x/sys v0.34.0 // indirect
)

require github.com/mapcore/mapcore-go v0.0.0

replace github.com/mapcore/mapcore-go => ../../go-binding
