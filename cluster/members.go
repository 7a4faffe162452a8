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

// ObservePeer is told by the transport which addresses a peer announces
// when it opens its stream. The leader records them in the replicated
// member table when the table lacks them, so every node learns every
// member's client address. It never blocks.
func (n *Node) ObservePeer(id uint64, peerAddr, clientAddr string) {
	if id == 0 || id == n.cfg.ID || clientAddr == "" {
		return
	}
	select {
	case n.peerc <- &command.Member{Id: id, PeerAddr: peerAddr, ClientAddr: clientAddr}:
	default:
	}
}

// registerAnnounced proposes, on the leader, the addresses peers
// announced that the member table lacks. Called by the loop on ticks.
func (n *Node) registerAnnounced() {
	if !n.IsLeader() {
		return
	}
	for id, m := range n.announced {
		n.membersMu.RLock()
		cur, ok := n.members[id]
		n.membersMu.RUnlock()
		if !ok {
			continue // not a member (yet): its conf change carries addresses
		}
		if cur.GetClientAddr() == m.GetClientAddr() && (m.GetPeerAddr() == "" || cur.GetPeerAddr() == m.GetPeerAddr()) {
			delete(n.announced, id)
			continue
		}
		data, err := command.Marshal(&command.Command{Type: command.CommandType_COMMAND_TYPE_SET_MEMBER, ProposerId: n.cfg.ID, Member: m})
		if err != nil {
			continue
		}
		n.propose(proposal{data: data})
	}
}
