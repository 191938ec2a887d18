package node

import "time"

// unloadOrphans unloads the data of players loaded here that have had no session anywhere for
// player.orphan_after: the session's end did not reach their actor (lost between processes, a
// full mailbox) or its unload failed. Upkeep goroutine only.
func (n *Node) unloadOrphans(now time.Time) {
	if n.players == nil {
		return
	}
	if n.orphans == nil {
		n.orphans = map[string]time.Time{}
	}
	presence := clusterPresence{n.online, n.cluster}
	loaded := map[string]bool{}
	for _, player := range n.players.Players() {
		loaded[player] = true
		if on, _ := presence.Online(player); on {
			delete(n.orphans, player)
			continue
		}
		since, seen := n.orphans[player]
		switch {
		case !seen:
			n.orphans[player] = now
		case now.Sub(since) >= n.cfg.Player.OrphanAfter && n.local.Orphaned(n.cfg.Player.Role, player):
			n.log.Info("unloading the data of a player without a session", "player", player, "since", since)
			delete(n.orphans, player) // seen again if the unload fails
		}
	}
	for player := range n.orphans {
		if !loaded[player] {
			delete(n.orphans, player)
		}
	}
}
