namespace Moonforge
{
    /// <summary>
    /// A Protocol Buffers message with generated, reflection-free encoding (IL2CPP-safe). Messages are
    /// plain mutable objects: not safe for concurrent use; hand one to another thread only when done with it.
    /// </summary>
    public interface IMessage
    {
        /// <summary>Appends the message's encoding as protobuf-go's deterministic marshalling does: fields outside
        /// oneofs by number, then the oneof members, then the unknown fields.</summary>
        void WriteTo(ProtoWriter writer);

        /// <summary>Reads fields up to the reader's current limit and merges them into this message.</summary>
        /// <exception cref="ProtoException">The bytes are not a valid encoding of this message.</exception>
        void MergeFrom(ProtoReader reader);

        /// <summary>Writes the message as protojson writes it (proto field names, defaults omitted).</summary>
        void WriteJson(JsonWriter writer);
    }
}
