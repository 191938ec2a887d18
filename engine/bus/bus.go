// Package bus is the fabric between Moonforge nodes: a NATS connection (to a nats-server embedded
// in this process, or to an existing NATS cluster), the subjects each node, role, master and proxy
// listens on, and the Envelope every message between nodes travels in. The choice between an
// embedded server and an external cluster is configuration (config.Cluster), not code.
package bus

import (
	"fmt"
	"strings"
)

// Format is the envelope format version this engine writes and reads.
const Format = 1

// Subjects. Node ids and role names are single subject tokens (letters, digits, '-', '_').
const (
	prefix = "mf."
	// MasterSubject takes calls forwarded by the master ({via="master"}) and master commands.
	MasterSubject = prefix + "master"
	// CommandsAll reaches every node (cluster-wide reload, drain).
	CommandsAll = prefix + "cmd.all"
)

// NodeSubject takes requests and calls for one node.
func NodeSubject(node string) string { return prefix + "node." + node }

// RoleSubject takes requests and calls for any node of a role; nodes subscribe in the queue group
// named by the role, so each message reaches one of them.
func RoleSubject(role string) string { return prefix + "role." + role }

// BroadcastSubject takes mf.broadcast messages for every node of a role (no queue group).
func BroadcastSubject(role string) string { return prefix + "bcast." + role }

// ProxySubject takes pushes and kicks for the players whose sessions live on a proxy.
func ProxySubject(proxy string) string { return prefix + "proxy." + proxy }

// CommandSubject takes cluster commands for one node.
func CommandSubject(node string) string { return prefix + "cmd." + node }

// ReplyPrefix is what every answer to a node starts with; the node subscribes to ReplyPrefix+">".
func ReplyPrefix(node string) string { return prefix + "reply." + node + "." }

// ReplySubject is where the answer to request id of box on node goes. A request sent with it as
// reply subject that finds no subscriber gets NATS's no-responders status there at once.
func ReplySubject(node string, box, id uint64) string {
	return fmt.Sprintf("%s%d.%d", ReplyPrefix(node), box, id)
}

// ParseReply returns the box and request id of a subject under ReplyPrefix(node).
func ParseReply(node, subject string) (box, id uint64, ok bool) {
	rest, found := strings.CutPrefix(subject, ReplyPrefix(node))
	if !found {
		return 0, 0, false
	}
	b, i, found := strings.Cut(rest, ".")
	if !found {
		return 0, 0, false
	}
	if _, err := fmt.Sscan(b, &box); err != nil {
		return 0, 0, false
	}
	if _, err := fmt.Sscan(i, &id); err != nil {
		return 0, 0, false
	}
	return box, id, true
}

// ValidName reports whether s can be a node id or role name: 1 to 64 letters, digits, '-' or '_'.
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
		if !ok {
			return false
		}
	}
	return true
}
