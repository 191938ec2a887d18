package playerdata

// Abandon stops m as a killed process would: no flush, no drain, no
// release; the journal file keeps what it has.
func (m *Manager) Abandon() {
	close(m.stop)
	m.done.Wait()
	_ = m.journal.Close()
}
