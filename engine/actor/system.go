package actor

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/moonforge/moonforge/engine/config"
	"github.com/moonforge/moonforge/engine/script"
)

// Observer receives the actor system's events for metrics. Calls come from actor goroutines.
type Observer interface {
	Applied(role string, ok bool, took time.Duration)
}

type noObserver struct{}

func (noObserver) Applied(string, bool, time.Duration) {}

// SystemConfig configures a System.
type SystemConfig struct {
	Services      *script.Services
	Versions      *script.Versions // required: the version in force, and new ones to apply
	Log           *slog.Logger
	Observer      Observer      // optional
	WatchInterval time.Duration // how often overrunning calls are looked for; default 20ms
	// MailboxBytes bounds the bytes (request payloads) queued in one actor's mailbox, for the
	// tasks sent with SendBytes; default 16 MiB.
	MailboxBytes int64
}

// System owns every actor of a process and the watchdog that enforces call deadlines. Safe for
// concurrent use.
type System struct {
	svc      *script.Services
	versions *script.Versions
	log      *slog.Logger
	observer Observer
	maxBytes int64

	mu     sync.Mutex
	actors map[*Actor]struct{}
	closed bool

	quit chan struct{}
	wg   sync.WaitGroup
}

// NewSystem starts the watchdog; Stop ends it.
func NewSystem(cfg SystemConfig) *System {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Observer == nil {
		cfg.Observer = noObserver{}
	}
	if cfg.WatchInterval <= 0 {
		cfg.WatchInterval = 20 * time.Millisecond
	}
	if cfg.MailboxBytes <= 0 {
		cfg.MailboxBytes = 16 << 20
	}
	s := &System{
		svc:      cfg.Services,
		versions: cfg.Versions,
		log:      cfg.Log,
		observer: cfg.Observer,
		maxBytes: cfg.MailboxBytes,
		actors:   map[*Actor]struct{}{},
		quit:     make(chan struct{}),
	}
	s.wg.Add(2)
	go s.watch(cfg.WatchInterval)
	go s.announceVersions()
	return s
}

// Spawn creates an actor: its VM is built and loaded with the current version on the calling
// goroutine (so a script error is returned here), then the actor's goroutine starts.
func (s *System) Spawn(cfg Config) (*Actor, error) {
	if cfg.MailboxSize <= 0 {
		cfg.MailboxSize = config.Default().Lua.MailboxSize
	}
	bundle, changed := s.versions.Current()
	vm := script.NewVM(cfg.Role, s.svc)
	if err := vm.Apply(bundle); err != nil {
		vm.Close()
		return nil, fmt.Errorf("actor %s: %w", cfg.Name, err)
	}
	a := &Actor{
		cfg:     cfg,
		sys:     s,
		vm:      vm,
		mailbox: make(chan queued, cfg.MailboxSize+1), // a slot for the wake marker
		done:    make(chan struct{}),
		changed: changed,
	}
	if s.svc != nil && s.svc.Boxes != nil {
		a.box = s.svc.Boxes.Open(a)
		vm.SetReplyTo(a.box, s.svc.Boxes)
	}
	a.version.Store(bundle.Version)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		vm.Close()
		return nil, fmt.Errorf("actor %s: the actor system is stopped", cfg.Name)
	}
	s.actors[a] = struct{}{}
	s.mu.Unlock()
	go a.run()
	return a, nil
}

func (s *System) forget(a *Actor) {
	s.mu.Lock()
	delete(s.actors, a)
	s.mu.Unlock()
}

// Each calls fn for every live actor (fn must not block).
func (s *System) Each(fn func(a *Actor)) {
	s.mu.Lock()
	list := make([]*Actor, 0, len(s.actors))
	for a := range s.actors {
		list = append(list, a)
	}
	s.mu.Unlock()
	for _, a := range list {
		fn(a)
	}
}

// Stop stops every actor, letting each finish its queued tasks, and waits for them.
func (s *System) Stop() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	var all []*Actor
	s.Each(func(a *Actor) { all = append(all, a); a.Stop() })
	for _, a := range all {
		<-a.Done()
	}
	close(s.quit)
	s.wg.Wait()
}

// announceVersions wakes every actor when a new version is published, so that an idle actor
// applies it without waiting for work (a busy one looks before each task).
func (s *System) announceVersions() {
	defer s.wg.Done()
	for {
		_, changed := s.versions.Current()
		select {
		case <-s.quit:
			return
		case <-changed:
			s.Each(func(a *Actor) { a.poke() })
		}
	}
}

// watch interrupts calls that have overrun their deadline.
func (s *System) watch(every time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.quit:
			return
		case now := <-t.C:
			s.Each(func(a *Actor) {
				if a.vm.Interrupt(now) {
					s.log.Warn("interrupted a script call that overran its deadline", "actor", a.cfg.Name)
				}
			})
		}
	}
}

// Pool is a fixed set of actors of one role. Which actor serves a key is the dispatcher's choice
// (route.Pick), the same in every process.
type Pool struct {
	role   string
	actors []*Actor
}

// NewPool spawns size actors for role.
func (s *System) NewPool(role string, size int, mailbox int) (*Pool, error) {
	if size <= 0 {
		size = 1
	}
	p := &Pool{role: role}
	for i := 0; i < size; i++ {
		a, err := s.Spawn(Config{Name: fmt.Sprintf("%s/%d", role, i), Role: role, MailboxSize: mailbox})
		if err != nil {
			for _, a := range p.actors {
				a.Stop()
			}
			return nil, err
		}
		p.actors = append(p.actors, a)
	}
	return p, nil
}

// Actor returns the pool's actor i, 0 <= i < Size().
func (p *Pool) Actor(i int) *Actor { return p.actors[i] }

// Size returns the number of actors.
func (p *Pool) Size() int { return len(p.actors) }

// Role returns the pool's role.
func (p *Pool) Role() string { return p.role }
