package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/moonforge/moonforge/engine/client"
)

// maxDuelRounds bounds a duel of draws.
const maxDuelRounds = 30

// duel plays one side of the duel example (examples/duel, laid over the demo): queue, wait to be
// paired, pick each round (from picks in turn, or at random when picks is empty) until the duel
// is over, then read the saved record. Two bots play each other.
func (b *bot) duel(ctx context.Context, cfg client.Config, device string, picks []string) error {
	c, err := client.Dial(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	b.c = c
	ack, err := c.Login(ctx, "guest", device, "", nil)
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	me := ack.PlayerId
	b.printf("<- LoginAck player=%s\n", me)
	if _, err := b.call(ctx, "duel.QueueReq", ``); err != nil {
		return err
	}
	var matched struct{ Opponent string }
	if err := b.awaitPush(ctx, &matched, "Matched"); err != nil {
		return err
	}
	wins := map[string]int{}
	for round := 0; ; round++ {
		if round == maxDuelRounds {
			return fmt.Errorf("no winner after %d rounds", maxDuelRounds)
		}
		pick := []string{"rock", "paper", "scissors"}[rand.IntN(3)]
		if len(picks) > 0 {
			pick = picks[round%len(picks)]
		}
		if _, err := b.call(ctx, "duel.PickReq", fmt.Sprintf(`{"pick": %q}`, pick)); err != nil {
			return err
		}
		var res struct{ Winner, Reason string }
		if err := b.awaitPush(ctx, &res, "RoundResult", "Over"); err != nil {
			return err
		}
		if res.Reason != "" { // Over: the opponent forfeited
			return b.duelOver(ctx, device, me, res.Winner, res.Reason)
		}
		if res.Winner != "" {
			wins[res.Winner]++
		}
		if wins[res.Winner] == 2 {
			var over struct{ Winner, Reason string }
			if err := b.awaitPush(ctx, &over, "Over"); err != nil {
				return err
			}
			return b.duelOver(ctx, device, me, over.Winner, over.Reason)
		}
	}
}

func (b *bot) duelOver(ctx context.Context, device, me, winner, reason string) error {
	result := "lost"
	if winner == me {
		result = "won"
	}
	record, err := b.call(ctx, "duel.RecordReq", ``)
	if err != nil {
		return err
	}
	fmt.Printf("bot %s: ok, player %s %s the duel (%s), record %s\n", device, me, result, reason, strings.TrimSpace(record))
	return nil
}

// awaitPush prints pushes until one of names arrives, and decodes it into out (protojson names).
func (b *bot) awaitPush(ctx context.Context, out any, names ...string) error {
	for {
		select {
		case p := <-b.c.Pushes():
			name, text, err := b.msgs.Decode(p.MsgID, p.Payload)
			if err != nil {
				return err
			}
			b.printf("<< push %d %s %s\n", p.Seq, name, text)
			for _, n := range names {
				if n == name {
					return json.Unmarshal([]byte(text), out)
				}
			}
		case <-b.c.Done():
			return fmt.Errorf("the connection closed while waiting for %s", strings.Join(names, " or "))
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", strings.Join(names, " or "), ctx.Err())
		}
	}
}
