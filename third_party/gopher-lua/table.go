package lua

const defaultArrayCap = 32
const defaultHashCap = 32

type lValueArraySorter struct {
	L      *LState
	Fn     *LFunction
	Values []LValue
}

func (lv lValueArraySorter) Len() int {
	return len(lv.Values)
}

func (lv lValueArraySorter) Swap(i, j int) {
	lv.Values[i], lv.Values[j] = lv.Values[j], lv.Values[i]
}

func (lv lValueArraySorter) Less(i, j int) bool {
	if lv.Fn != nil {
		lv.L.Push(lv.Fn)
		lv.L.Push(lv.Values[i])
		lv.L.Push(lv.Values[j])
		lv.L.Call(2, 1)
		return LVAsBool(lv.L.reg.Pop())
	}
	return lessThan(lv.L, lv.Values[i], lv.Values[j])
}

func newLTable(acap int, hcap int) *LTable {
	if acap < 0 {
		acap = 0
	}
	if hcap < 0 {
		hcap = 0
	}
	var tb *LTable
	// A small hash part is allocated with the table, in one allocation.
	switch {
	case hcap == 0:
		tb = &LTable{}
	case hcap <= 2:
		t := &struct {
			LTable
			entries [2]hashEntry
		}{}
		tb = &t.LTable
		tb.hash = t.entries[:0]
	case hcap <= 4:
		t := &struct {
			LTable
			entries [4]hashEntry
		}{}
		tb = &t.LTable
		tb.hash = t.entries[:0]
	case hcap <= smallHash:
		t := &struct {
			LTable
			entries [smallHash]hashEntry
		}{}
		tb = &t.LTable
		tb.hash = t.entries[:0]
	default:
		tb = &LTable{hash: make([]hashEntry, 0, hcap)}
	}
	tb.Metatable = LNil
	if acap != 0 {
		tb.array = make([]LValue, 0, acap)
	}
	return tb
}

// Len returns length of this LTable without using __len.
func (tb *LTable) Len() int {
	if tb.array == nil {
		return 0
	}
	var prev LValue = LNil
	for i := len(tb.array) - 1; i >= 0; i-- {
		v := tb.array[i]
		if prev == LNil && v != LNil {
			return i + 1
		}
		prev = v
	}
	return 0
}

// Append appends a given LValue to this LTable.
func (tb *LTable) Append(value LValue) {
	if value == LNil {
		return
	}
	if tb.array == nil {
		tb.array = make([]LValue, 0, defaultArrayCap)
	}
	if len(tb.array) == 0 || tb.array[len(tb.array)-1] != LNil {
		tb.array = append(tb.array, value)
	} else {
		i := len(tb.array) - 2
		for ; i >= 0; i-- {
			if tb.array[i] != LNil {
				break
			}
		}
		tb.array[i+1] = value
	}
}

// Insert inserts a given LValue at position `i` in this table.
func (tb *LTable) Insert(i int, value LValue) {
	if tb.array == nil {
		tb.array = make([]LValue, 0, defaultArrayCap)
	}
	if i > len(tb.array) {
		tb.RawSetInt(i, value)
		return
	}
	if i <= 0 {
		tb.RawSet(LNumber(i), value)
		return
	}
	i -= 1
	tb.array = append(tb.array, LNil)
	copy(tb.array[i+1:], tb.array[i:])
	tb.array[i] = value
}

// MaxN returns a maximum number key that nil value does not exist before it.
func (tb *LTable) MaxN() int {
	if tb.array == nil {
		return 0
	}
	for i := len(tb.array) - 1; i >= 0; i-- {
		if tb.array[i] != LNil {
			return i + 1
		}
	}
	return 0
}

// Remove removes from this table the element at a given position.
func (tb *LTable) Remove(pos int) LValue {
	if tb.array == nil {
		return LNil
	}
	larray := len(tb.array)
	if larray == 0 {
		return LNil
	}
	i := pos - 1
	oldval := LNil
	switch {
	case i >= larray:
		// nothing to do
	case i == larray-1 || i < 0:
		oldval = tb.array[larray-1]
		tb.array = tb.array[:larray-1]
	default:
		oldval = tb.array[i]
		copy(tb.array[i:], tb.array[i+1:])
		tb.array[larray-1] = nil
		tb.array = tb.array[:larray-1]
	}
	return oldval
}

// RawSet sets a given LValue to a given index without the __newindex metamethod.
// It is recommended to use `RawSetString` or `RawSetInt` for performance
// if you already know the given LValue is a string or number.
func (tb *LTable) RawSet(key LValue, value LValue) {
	switch v := key.(type) {
	case LNumber:
		if isArrayKey(v) {
			tb.setArray(int(v)-1, value)
			return
		}
	case LString:
		// key is already boxed: a new entry keeps it as it is, without a copy of the string header.
		tb.setHash(tb.findString(string(v)), key, value)
		return
	}
	tb.setHash(tb.find(key), key, value)
}

// RawSetInt sets a given LValue at a position `key` without the __newindex metamethod.
func (tb *LTable) RawSetInt(key int, value LValue) {
	if key < 1 || key >= MaxArrayIndex {
		tb.RawSetH(LNumber(key), value)
		return
	}
	tb.setArray(key-1, value)
}

// setArray sets the array slot index (0-based), growing the array part with nils up to it.
func (tb *LTable) setArray(index int, value LValue) {
	if tb.array == nil {
		tb.array = make([]LValue, 0, defaultArrayCap)
	}
	alen := len(tb.array)
	switch {
	case index == alen:
		tb.array = append(tb.array, value)
	case index > alen:
		for i := 0; i < (index - alen); i++ {
			tb.array = append(tb.array, LNil)
		}
		tb.array = append(tb.array, value)
	case index < alen:
		tb.array[index] = value
	}
}

// RawSetString sets a given LValue to a given string index without the __newindex metamethod.
func (tb *LTable) RawSetString(key string, value LValue) {
	if i := tb.findString(key); i >= 0 {
		tb.setEntry(i, value)
	} else if value != LNil {
		tb.insert(LString(key), value)
	}
}

// RawSetH sets a given LValue to a given index without the __newindex metamethod.
// Unlike RawSet, a number key always goes to the hash part.
func (tb *LTable) RawSetH(key LValue, value LValue) {
	if s, ok := key.(LString); ok {
		tb.setHash(tb.findString(string(s)), key, value)
		return
	}
	tb.setHash(tb.find(key), key, value)
}

// RawGet returns an LValue associated with a given key without __index metamethod.
func (tb *LTable) RawGet(key LValue) LValue {
	switch v := key.(type) {
	case LNumber:
		if isArrayKey(v) {
			index := int(v) - 1
			if index >= len(tb.array) {
				return LNil
			}
			return tb.array[index]
		}
	case LString:
		return tb.RawGetString(string(v))
	}
	if i := tb.find(key); i >= 0 {
		return tb.hash[i].value
	}
	return LNil
}

// RawGetInt returns an LValue at position `key` without __index metamethod.
func (tb *LTable) RawGetInt(key int) LValue {
	index := key - 1
	if index >= len(tb.array) || index < 0 {
		return LNil
	}
	return tb.array[index]
}

// RawGetH returns an LValue associated with a given key in the hash part without __index
// metamethod.
func (tb *LTable) RawGetH(key LValue) LValue {
	if s, ok := key.(LString); ok {
		return tb.RawGetString(string(s))
	}
	if i := tb.find(key); i >= 0 {
		return tb.hash[i].value
	}
	return LNil
}

// RawGetString returns an LValue associated with a given key without __index metamethod.
func (tb *LTable) RawGetString(key string) LValue {
	if i := tb.findString(key); i >= 0 {
		return tb.hash[i].value
	}
	return LNil
}

// ForEach iterates over this table of elements, yielding each in turn to a given function.
func (tb *LTable) ForEach(cb func(LValue, LValue)) {
	for i, v := range tb.array {
		if v != LNil {
			cb(LNumber(i+1), v)
		}
	}
	// The callback may change the table: read the hash part afresh at each step.
	for i := 0; i < len(tb.hash); i++ {
		if e := tb.hash[i]; e.value != LNil {
			cb(e.key, e.value)
		}
	}
}

// This function is equivalent to lua_next ( http://www.lua.org/manual/5.1/manual.html#lua_next ).
// The array part comes first, then the hash part in the order its keys were first set. A key that
// is in neither part ends the traversal (LNil, LNil).
func (tb *LTable) Next(key LValue) (LValue, LValue) {
	start := 0 // the position in the hash part to look from
	if n, ok := key.(LNumber); key == LNil || ok && isArrayKey(n) {
		index := 0
		if key != LNil {
			if index = int(n); index > len(tb.array) {
				return LNil, LNil
			}
		}
		for ; index < len(tb.array); index++ {
			if v := tb.array[index]; v != LNil {
				return LNumber(index + 1), v
			}
		}
	} else {
		i := tb.findKey(key)
		if i < 0 {
			return LNil, LNil
		}
		start = i + 1
	}
	for i := start; i < len(tb.hash); i++ {
		if e := tb.hash[i]; e.value != LNil {
			return e.key, e.value
		}
	}
	return LNil, LNil
}

// The hash part.
//
// Every key outside the array part is an entry of tb.hash, in the order it was first set. Small
// tables (up to smallHash entries) are searched linearly, which costs no allocation beyond the
// entries' slice; larger ones keep an index from key to position (strIndex for string keys,
// index for the others). A key set to nil stays as a dead entry (value LNil), so that Next can
// continue from it while a traversal clears fields, as Lua allows; dead entries are removed when
// a new key needs room and at least a quarter of the entries are dead (assigning to a new key
// during a traversal is undefined in Lua, so no traversal can be relying on them then).

// smallHash is the number of hash entries up to which a table has no index.
const smallHash = 8

type hashEntry struct {
	key   LValue
	value LValue
}

// indexed reports whether the hash part has outgrown the linear search.
func (tb *LTable) indexed() bool { return len(tb.hash) > smallHash }

// findString returns the position of the string key s in the hash part, or -1.
func (tb *LTable) findString(s string) int {
	if tb.indexed() {
		if i, ok := tb.strIndex[s]; ok {
			return i
		}
		return -1
	}
	for i := range tb.hash {
		if k, ok := tb.hash[i].key.(LString); ok && string(k) == s {
			return i
		}
	}
	return -1
}

// find returns the position of key, which is not an LString, in the hash part, or -1.
func (tb *LTable) find(key LValue) int {
	if tb.indexed() {
		if i, ok := tb.index[key]; ok {
			return i
		}
		return -1
	}
	for i := range tb.hash {
		if tb.hash[i].key == key {
			return i
		}
	}
	return -1
}

// findKey returns the position of any key in the hash part, or -1.
func (tb *LTable) findKey(key LValue) int {
	if s, ok := key.(LString); ok {
		return tb.findString(string(s))
	}
	return tb.find(key)
}

// setHash sets key to value, where i is key's position in the hash part (or -1 if absent).
func (tb *LTable) setHash(i int, key LValue, value LValue) {
	if i >= 0 {
		tb.setEntry(i, value)
	} else if value != LNil {
		tb.insert(key, value)
	}
}

// setEntry sets the value of the entry at i, counting the entries that die or live again.
func (tb *LTable) setEntry(i int, value LValue) {
	e := &tb.hash[i]
	if was, is := e.value == LNil, value == LNil; was != is {
		if is {
			tb.dead++
		} else {
			tb.dead--
		}
	}
	e.value = value
}

// insert adds a key that is in neither part, with a non-nil value.
func (tb *LTable) insert(key LValue, value LValue) {
	if len(tb.hash) == cap(tb.hash) && tb.dead > 0 && tb.dead >= len(tb.hash)/4 {
		tb.compact()
	}
	if old := tb.hash; len(old) == cap(old) {
		tb.hash = append(old, hashEntry{key: key, value: value})
		// The old entries may be the ones allocated with the table, which lives on: drop their
		// references, or a value removed later would stay reachable through them.
		clear(old)
	} else {
		tb.hash = append(old, hashEntry{key: key, value: value})
	}
	switch n := len(tb.hash); {
	case n == smallHash+1:
		tb.reindex()
	case n > smallHash+1:
		tb.indexKey(key, n-1)
	}
}

// compact removes the dead entries of the hash part, keeping the order of the others.
func (tb *LTable) compact() {
	live := tb.hash[:0]
	for _, e := range tb.hash {
		if e.value != LNil {
			live = append(live, e)
		}
	}
	clear(tb.hash[len(live):])
	tb.hash = live
	tb.dead = 0
	tb.reindex()
}

// reindex rebuilds the index of the hash part, or drops it when the part is small.
func (tb *LTable) reindex() {
	tb.strIndex, tb.index = nil, nil
	if !tb.indexed() {
		return
	}
	for i, e := range tb.hash {
		tb.indexKey(e.key, i)
	}
}

// indexKey records that key is at position i of the hash part.
func (tb *LTable) indexKey(key LValue, i int) {
	if s, ok := key.(LString); ok {
		if tb.strIndex == nil {
			tb.strIndex = make(map[string]int, cap(tb.hash))
		}
		tb.strIndex[string(s)] = i
		return
	}
	if tb.index == nil {
		tb.index = make(map[LValue]int)
	}
	tb.index[key] = i
}
