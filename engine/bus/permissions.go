package bus

import "github.com/nats-io/nats-server/v2/server"

// Roles that get a user of their own on an embedded server with authentication.
var Roles = []string{"master", "proxy", "login", "lobby", "game", "micro"}

// RoleUser is the bus user a node of one role connects as: user-role, with user's password.
func RoleUser(user, role string) string { return user + "-" + role }

// RoleUsers returns the users an embedded server with authentication accepts besides user
// itself (which may do anything: tools, nodes of several roles): one per role of Roles, allowed
// only the subjects that role needs. No role may send cluster commands (mf.cmd.>); only a
// master takes calls via the master; only a proxy takes pushes.
func RoleUsers(user, pass string) []*server.User {
	var out []*server.User
	for _, role := range Roles {
		pub := []string{
			prefix + "node.*", prefix + "role.*", prefix + "bcast.*", prefix + "reply.>", prefix + "proxy.*", MasterSubject,
			"$JS.API.>", "$KV.mf_nodes.>", "$KV.mf_sessions.>", "$KV.mf_rooms.>", "$KV.mf_placements.>", "_INBOX.>", "$JS.ACK.>", "$JS.FC.>",
		}
		sub := []string{
			prefix + "node.*", prefix + "reply.>", prefix + "cmd.>", "_INBOX.>",
			RoleSubject(role), BroadcastSubject(role),
		}
		switch role {
		case "proxy":
			sub = append(sub, prefix+"proxy.*")
		case "master":
			sub = append(sub, MasterSubject)
		}
		out = append(out, &server.User{
			Username: RoleUser(user, role),
			Password: pass,
			Permissions: &server.Permissions{
				Publish:   &server.SubjectPermission{Allow: pub},
				Subscribe: &server.SubjectPermission{Allow: sub},
			},
		})
	}
	return out
}
