package rpcpb

import "rdb/command"

// The methods in this file let rdb's gRPC codec (rpc/client.Codec) use the
// generated vtprotobuf code for the messages of the hot paths with
// protobuf's behaviour: CheckUTF8 refuses strings that are not UTF-8, as
// protobuf's codec does, and HasUnknownFields sends a message with
// unknown fields (or anything else the generated decoder keeps as raw
// bytes) to protobuf's decoder, which refuses malformed ones. Both walk
// every string and every nested message of the message.

// CheckUTF8 reports whether every string field of r is valid UTF-8.
func (r *ExecuteRequest) CheckUTF8() error { return command.CheckAllUTF8(r.GetStatements()) }

// HasUnknownFields reports whether r or a message in it has unknown fields.
func (r *ExecuteRequest) HasUnknownFields() bool {
	return r != nil && (len(r.unknownFields) > 0 || command.AnyUnknownFields(r.Statements))
}

// CheckUTF8 reports whether every string field of r is valid UTF-8.
func (r *QueryRequest) CheckUTF8() error { return command.CheckAllUTF8(r.GetStatements()) }

// HasUnknownFields reports whether r or a message in it has unknown fields.
func (r *QueryRequest) HasUnknownFields() bool {
	return r != nil && (len(r.unknownFields) > 0 || command.AnyUnknownFields(r.Statements))
}

// CheckUTF8 reports whether every string field of r is valid UTF-8.
func (r *RequestRequest) CheckUTF8() error { return command.CheckAllUTF8(r.GetStatements()) }

// HasUnknownFields reports whether r or a message in it has unknown fields.
func (r *RequestRequest) HasUnknownFields() bool {
	return r != nil && (len(r.unknownFields) > 0 || command.AnyUnknownFields(r.Statements))
}

// CheckUTF8 reports whether every string field of r is valid UTF-8.
func (r *ExecuteResponse) CheckUTF8() error { return command.CheckAllUTF8(r.GetResults()) }

// HasUnknownFields reports whether r or a message in it has unknown fields.
func (r *ExecuteResponse) HasUnknownFields() bool {
	return r != nil && (len(r.unknownFields) > 0 || command.AnyUnknownFields(r.Results))
}

// CheckUTF8 reports whether every string field of r is valid UTF-8.
func (r *QueryResponse) CheckUTF8() error { return command.CheckAllUTF8(r.GetResults()) }

// HasUnknownFields reports whether r or a message in it has unknown fields.
func (r *QueryResponse) HasUnknownFields() bool {
	return r != nil && (len(r.unknownFields) > 0 || command.AnyUnknownFields(r.Results))
}

// CheckUTF8 reports whether every string field of r is valid UTF-8.
func (r *RequestResponse) CheckUTF8() error { return command.CheckAllUTF8(r.GetResults()) }

// HasUnknownFields reports whether r or a message in it has unknown fields.
func (r *RequestResponse) HasUnknownFields() bool {
	return r != nil && (len(r.unknownFields) > 0 || command.AnyUnknownFields(r.Results))
}

// CheckUTF8 reports whether every string field of c is valid UTF-8.
func (c *PipelineCall) CheckUTF8() error {
	switch x := c.GetCall().(type) {
	case *PipelineCall_Execute:
		return x.Execute.CheckUTF8()
	case *PipelineCall_Query:
		return x.Query.CheckUTF8()
	case *PipelineCall_Request:
		return x.Request.CheckUTF8()
	}
	return nil
}

// HasUnknownFields reports whether c or a message in it has unknown fields.
func (c *PipelineCall) HasUnknownFields() bool {
	if c == nil {
		return false
	}
	if len(c.unknownFields) > 0 {
		return true
	}
	switch x := c.Call.(type) {
	case *PipelineCall_Execute:
		return x.Execute.HasUnknownFields()
	case *PipelineCall_Query:
		return x.Query.HasUnknownFields()
	case *PipelineCall_Request:
		return x.Request.HasUnknownFields()
	}
	return false
}

// CheckUTF8 reports whether every string field of r is valid UTF-8.
func (r *PipelineRequest) CheckUTF8() error { return command.CheckAllUTF8(r.GetCalls()) }

// HasUnknownFields reports whether r or a message in it has unknown fields.
func (r *PipelineRequest) HasUnknownFields() bool {
	return r != nil && (len(r.unknownFields) > 0 || command.AnyUnknownFields(r.Calls))
}

// CheckUTF8 reports whether every string field of r is valid UTF-8.
func (r *PipelineReply) CheckUTF8() error {
	switch x := r.GetReply().(type) {
	case *PipelineReply_Execute:
		return x.Execute.CheckUTF8()
	case *PipelineReply_Query:
		return x.Query.CheckUTF8()
	case *PipelineReply_Request:
		return x.Request.CheckUTF8()
	case *PipelineReply_Error:
		return x.Error.CheckUTF8()
	}
	return nil
}

// HasUnknownFields reports whether r or a message in it has unknown fields.
func (r *PipelineReply) HasUnknownFields() bool {
	if r == nil {
		return false
	}
	if len(r.unknownFields) > 0 {
		return true
	}
	switch x := r.Reply.(type) {
	case *PipelineReply_Execute:
		return x.Execute.HasUnknownFields()
	case *PipelineReply_Query:
		return x.Query.HasUnknownFields()
	case *PipelineReply_Request:
		return x.Request.HasUnknownFields()
	case *PipelineReply_Error:
		return x.Error.HasUnknownFields()
	}
	return false
}

// CheckUTF8 reports whether every string field of s is valid UTF-8. Its
// details are checked by HasUnknownFields: any makes the codec use
// protobuf.
func (s *CallStatus) CheckUTF8() error {
	return command.CheckString("call status message", s.GetMessage())
}

// HasUnknownFields reports whether s has unknown fields, or details
// (google.protobuf.Any messages, whose fields this package cannot see).
func (s *CallStatus) HasUnknownFields() bool {
	return s != nil && (len(s.unknownFields) > 0 || len(s.Details) > 0)
}

// CheckUTF8 reports whether every string field of r is valid UTF-8.
func (r *PipelineResponse) CheckUTF8() error { return command.CheckAllUTF8(r.GetReplies()) }

// HasUnknownFields reports whether r or a message in it has unknown fields.
func (r *PipelineResponse) HasUnknownFields() bool {
	return r != nil && (len(r.unknownFields) > 0 || command.AnyUnknownFields(r.Replies))
}

// CheckUTF8 reports nil: m has no string fields.
func (m *RaftMessage) CheckUTF8() error { return nil }

// HasUnknownFields reports whether m has unknown fields.
func (m *RaftMessage) HasUnknownFields() bool { return m != nil && len(m.unknownFields) > 0 }

// CheckUTF8 reports nil: a has no string fields.
func (a *RaftAck) CheckUTF8() error { return nil }

// HasUnknownFields reports whether a has unknown fields.
func (a *RaftAck) HasUnknownFields() bool { return a != nil && len(a.unknownFields) > 0 }
