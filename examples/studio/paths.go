package main

import "sync"

// Paths finds shortest paths on a grid of cells, some of them blocked. Every actor's Lua VM calls
// it from its own goroutine, so it is safe for concurrent use.
type Paths struct {
	w, h int

	mu       sync.Mutex
	blocked  map[[2]int]bool
	searches int64
}

// NewPaths returns an open w × h grid.
func NewPaths(w, h int) *Paths {
	return &Paths{w: w, h: h, blocked: map[[2]int]bool{}}
}

// Block blocks the cells of the rectangle (x0, y0)-(x1, y1), corners included.
func (p *Paths) Block(x0, y0, x1, y1 int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for x := min(x0, x1); x <= max(x0, x1); x++ {
		for y := min(y0, y1); y <= max(y0, y1); y++ {
			p.blocked[[2]int{x, y}] = true
		}
	}
}

// Length returns the number of steps (up, down, left, right) of a shortest path from (x0, y0) to
// (x1, y1), or -1 if there is none or a point is off the grid or blocked.
func (p *Paths) Length(x0, y0, x1, y1 int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.searches++
	start, goal := [2]int{x0, y0}, [2]int{x1, y1}
	if !p.open(start) || !p.open(goal) {
		return -1
	}
	dist := map[[2]int]int{start: 0}
	queue := [][2]int{start}
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		if c == goal {
			return dist[c]
		}
		for _, d := range [][2]int{{1, 0}, {-1, 0}, {0, 1}, {0, -1}} {
			n := [2]int{c[0] + d[0], c[1] + d[1]}
			if _, seen := dist[n]; !seen && p.open(n) {
				dist[n] = dist[c] + 1
				queue = append(queue, n)
			}
		}
	}
	return -1
}

// Searches returns how many paths were asked for since the process started.
func (p *Paths) Searches() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.searches
}

// open reports whether a cell is on the grid and not blocked; under p.mu.
func (p *Paths) open(c [2]int) bool {
	return c[0] >= 0 && c[1] >= 0 && c[0] < p.w && c[1] < p.h && !p.blocked[c]
}
