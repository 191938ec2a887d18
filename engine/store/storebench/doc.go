// Package storebench measures each store backend on this machine: get, put,
// batch and compare-and-set, each from 8 goroutines, as operations per
// second and the 99th percentile latency, and players saved per second with
// write-behind (package playerdata). `make bench` runs it; the servers are
// those of the tests (a redis-server of its own with appendfsync always, the
// machine's MariaDB, FerretDB on PostgreSQL).
package storebench
