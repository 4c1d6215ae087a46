package cluster

// Kill stops gossiping at once, without leaving or a last report, as a
// member that crashed or lost its network does; its registry keeps
// whatever it held.
func (n *Node) Kill() {
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()
	_ = n.ml.Shutdown()
}
