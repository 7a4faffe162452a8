package client

import (
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
)

// Codec is the gRPC codec of rdb's connections: protobuf, as gRPC's
// default codec, but the messages of the hot paths (the DB service's
// requests and responses, the Pipeline stream's messages and the peers'
// raft messages) are encoded and decoded by the code vtprotobuf generated
// for them, which takes a quarter of the CPU to encode and half to decode
// (a third of the leader's CPU at 64 concurrent inserts was protobuf's
// reflective codec). It keeps protobuf's behaviour: strings must be UTF-8
// both ways, and a message with unknown fields is decoded by protobuf.
// Its name is "proto", so peers that use gRPC's default codec talk to it
// unchanged.
var Codec encoding.CodecV2 = vtCodec{}

// CodecCallOption makes a connection's calls use Codec.
func CodecCallOption() grpc.CallOption { return grpc.ForceCodecV2(Codec) }

// vtMessage is a message with generated vtprotobuf code and the checks
// that keep protobuf's behaviour (rpc/rpcpb/checks.go).
type vtMessage interface {
	SizeVT() int
	MarshalToSizedBufferVT(dAtA []byte) (int, error)
	UnmarshalVT(dAtA []byte) error
	CheckUTF8() error
	HasUnknownFields() bool
}

type vtCodec struct{}

func (vtCodec) Name() string { return "proto" }

func (vtCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(vtMessage)
	if !ok {
		return marshalProto(v)
	}
	if err := m.CheckUTF8(); err != nil {
		return nil, fmt.Errorf("proto: marshal %T: %w", v, err)
	}
	return encodeInto(m.SizeVT(), func(buf []byte) error {
		_, err := m.MarshalToSizedBufferVT(buf)
		return err
	})
}

func (vtCodec) Unmarshal(data mem.BufferSlice, v any) error {
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	b := buf.ReadOnlyData()
	if m, ok := v.(vtMessage); ok {
		// The generated decoder copies what it keeps, so buf can be
		// freed after it.
		if err := m.UnmarshalVT(b); err == nil && !m.HasUnknownFields() {
			return m.CheckUTF8()
		}
		// Malformed, or with unknown fields: protobuf decides (the
		// message is reset first, as protobuf's codec does).
	}
	pm := messageV2Of(v)
	if pm == nil {
		return fmt.Errorf("proto: cannot unmarshal into %T, want proto.Message", v)
	}
	return proto.Unmarshal(b, pm)
}

// marshalProto encodes a message without generated code, as gRPC's
// default codec does.
func marshalProto(v any) (mem.BufferSlice, error) {
	pm := messageV2Of(v)
	if pm == nil {
		return nil, fmt.Errorf("proto: cannot marshal %T, want proto.Message", v)
	}
	opts := proto.MarshalOptions{UseCachedSize: true} // Size just ran
	return encodeInto(proto.Size(pm), func(buf []byte) error {
		_, err := opts.MarshalAppend(buf[:0], pm)
		return err
	})
}

// encodeInto returns size bytes written by fill: a plain slice below gRPC's
// buffer pooling threshold, a buffer from gRPC's pool (returned to it once
// sent) above it, as gRPC's own codec does.
func encodeInto(size int, fill func(buf []byte) error) (mem.BufferSlice, error) {
	if mem.IsBelowBufferPoolingThreshold(size) {
		buf := make([]byte, size)
		if err := fill(buf); err != nil {
			return nil, err
		}
		return mem.BufferSlice{mem.SliceBuffer(buf)}, nil
	}
	pool := mem.DefaultBufferPool()
	buf := pool.Get(size)
	if err := fill((*buf)[:size]); err != nil {
		pool.Put(buf)
		return nil, err
	}
	return mem.BufferSlice{mem.NewBuffer(buf, pool)}, nil
}

func messageV2Of(v any) proto.Message {
	switch m := v.(type) {
	case protoadapt.MessageV2:
		return m
	case protoadapt.MessageV1:
		return protoadapt.MessageV2Of(m)
	}
	return nil
}
