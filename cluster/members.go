package cluster

import (
	"fmt"
	"sort"

	"google.golang.org/protobuf/proto"

	"rdb/command"
)

// marshalConfContext encodes a conf change's context.
func marshalConfContext(c *command.ConfContext) ([]byte, error) {
	b, err := proto.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("marshal conf change context: %w", err)
	}
	return b, nil
}

// Members returns the known members with their addresses, sorted by id.
func (n *Node) Members() []*command.Member {
	n.membersMu.RLock()
	defer n.membersMu.RUnlock()
	out := make([]*command.Member, 0, len(n.members))
	for _, m := range n.members {
		out = append(out, proto.Clone(m).(*command.Member))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetId() < out[j].GetId() })
	return out
}

// setMember merges addresses learnt from the log into the member table
// and tells the transport about peer addresses. Called by the loop.
func (n *Node) setMember(m *command.Member) {
	if m.GetId() == 0 {
		return
	}
	n.membersMu.Lock()
	cur, ok := n.members[m.GetId()]
	if !ok {
		cur = &command.Member{Id: m.GetId()}
		n.members[m.GetId()] = cur
	}
	if m.GetPeerAddr() != "" {
		cur.PeerAddr = m.GetPeerAddr()
	}
	if m.GetClientAddr() != "" {
		cur.ClientAddr = m.GetClientAddr()
	}
	if m.GetStayLearner() {
		cur.StayLearner = true
	}
	peer := cur.GetPeerAddr()
	n.membersMu.Unlock()
	if peer != "" && m.GetId() != n.cfg.ID {
		n.transport.SetPeer(m.GetId(), peer)
	}
}

func (n *Node) removeMember(id uint64) {
	n.membersMu.Lock()
	delete(n.members, id)
	n.membersMu.Unlock()
	if id != n.cfg.ID {
		n.transport.RemovePeer(id)
	}
}

// selfRegistered reports whether the replicated member table holds this
// node's current addresses.
func (n *Node) selfRegistered() bool {
	n.membersMu.RLock()
	defer n.membersMu.RUnlock()
	m, ok := n.members[n.cfg.ID]
	return ok && m.GetClientAddr() == n.cfg.ClientAddr && (n.cfg.PeerAddr == "" || m.GetPeerAddr() == n.cfg.PeerAddr)
}
