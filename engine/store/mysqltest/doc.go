// Package mysqltest runs the store conformance suite and the fault tests on
// the MySQL backend, each test in a database of its own on the machine's
// MariaDB (or MOONFORGE_MYSQL_DSN's server).
package mysqltest
