package login

import (
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/moonforge/moonforge/engine/auth"
	"github.com/moonforge/moonforge/engine/call"
	"github.com/moonforge/moonforge/engine/protocol"
	"github.com/moonforge/moonforge/engine/store"
)

// scripts is a Custom that knows "ticket" (vouches for "acct-"+secret, or answers nothing for
// secret "silent").
type scripts struct{}

func (scripts) Login(l *call.Login) bool {
	if l.Method != "ticket" {
		return false
	}
	if l.Secret != "silent" {
		l.Answer(call.Answer{Value: "acct-" + l.Secret})
	}
	return true
}

// answers is an Inbox that hands answers to the test.
type answers chan call.Answer

func (a answers) Deliver(ans call.Answer) { a <- ans }

func TestMethods(t *testing.T) {
	st, err := store.OpenBolt(store.BoltConfig{Path: filepath.Join(t.TempDir(), "db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	tokens, err := auth.NewTokens([]auth.Key{{ID: "k1", Secret: make([]byte, 32)}}, time.Hour, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	boxes := call.NewBoxes("", nil)
	s := NewLocal(Config{Accounts: auth.NewAccounts(st, auth.Config{}), Tokens: tokens, Custom: scripts{}, Boxes: boxes, Disabled: []string{"password"}})
	in := make(answers, 1)
	addr := boxes.Open(in)
	ask := func(method, account, secret string) (*protocol.LoginAck, protocol.Code) {
		t.Helper()
		s.Login(&call.Login{ID: 1, Method: method, Account: account, Secret: secret, Deadline: time.Now().Add(200 * time.Millisecond), ReplyTo: addr, Post: boxes})
		a := <-in
		if a.Err != nil {
			return nil, a.Err.Code
		}
		var ack protocol.LoginAck
		if a.MsgID != protocol.MsgLoginAck || proto.Unmarshal(a.Payload, &ack) != nil {
			t.Fatalf("%s: answer %+v", method, a)
		}
		return &ack, 0
	}
	first, c := ask("guest", "device-1-0123456789", "")
	if c != 0 || !first.Created || first.PlayerId == "" {
		t.Fatalf("guest: %v %v", first, c)
	}
	if again, c := ask("guest", "device-1-0123456789", ""); c != 0 || again.Created || again.PlayerId != first.PlayerId {
		t.Fatalf("guest again: %v %v", again, c)
	}
	token, _ := tokens.Issue(first.PlayerId, "s1")
	if byToken, c := ask("token", "", token); c != 0 || byToken.PlayerId != first.PlayerId {
		t.Fatalf("token: %v %v", byToken, c)
	}
	if _, c := ask("token", "", "forged"); c != protocol.Unauthenticated {
		t.Fatalf("bad token: %v", c)
	}
	if _, c := ask("password", "bob", "secret123"); c != protocol.BadRequest {
		t.Fatalf("disabled method: %v", c)
	}
	viaLua, c := ask("ticket", "bob", "42")
	if c != 0 || viaLua.PlayerId == "" || viaLua.PlayerId == first.PlayerId {
		t.Fatalf("custom method: %v %v", viaLua, c)
	}
	if same, _ := ask("ticket", "bob", "42"); same.PlayerId != viaLua.PlayerId || same.Created {
		t.Fatalf("the same vouched account is another player: %v", same)
	}
	if _, c := ask("nope", "", ""); c != protocol.BadRequest {
		t.Fatalf("unknown method: %v", c)
	}
	if _, c := ask("ticket", "bob", "silent"); c != protocol.Timeout {
		t.Fatalf("a method that does not answer: %v", c)
	}
}
