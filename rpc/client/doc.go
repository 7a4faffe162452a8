// Package client is the Go client of rdb's gRPC API. A Client holds a list
// of endpoints (client addresses of cluster nodes), sends each call to its
// current endpoint, and fails over to the next one when that endpoint does
// not answer.
//
// Retries follow one rule: a call is repeated on another endpoint only when
// it is known not to have taken effect. Reads are always safe to repeat.
// A write is repeated only if it was never sent (the connection could not
// be made ready) or the server said it refused the write before proposing
// it (an ErrorInfo with reason NOT_APPLIED). A write that was sent and then
// failed in any other way is returned to the caller as is; IsOutcomeUnknown
// tells whether it may still have been committed.
//
// With Config.ClusterID set, every call carries that cluster id and a node
// of another cluster refuses it with FailedPrecondition.
//
// A request over the server's size limit (ResourceExhausted) is never
// repeated: every node would refuse it the same way.
//
// A Client is safe for concurrent use; concurrent calls share one HTTP/2
// connection per endpoint. Execute, Query and Request calls to an endpoint
// go over one Pipeline stream (see Pipeline): calls made while others are
// being sent share a message, which cuts the CPU per call when many
// goroutines use one Client; Config.DisablePipeline sends unary calls.
//
// Its connections encode with Codec: protobuf on the wire, written and read
// by generated code (vtprotobuf) instead of protobuf's reflection, with
// protobuf's rules kept. The rdb servers and the peers use it too.
package client
