package node

import "github.com/moonforge/moonforge/engine/playerdata"

// PlayerData returns the node's player data manager, for tests.
func PlayerData(n *Node) *playerdata.Manager { return n.players }
