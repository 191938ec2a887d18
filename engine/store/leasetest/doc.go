// Package leasetest checks leases and compare-and-set across processes: the
// test binary starts copies of itself as competing nodes on a shared Redis
// (a redis-server of its own) or MySQL (a database of its own on the
// machine's MariaDB).
package leasetest
