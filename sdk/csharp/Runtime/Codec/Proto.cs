namespace Moonforge
{
    /// <summary>Encoding and decoding of whole messages. Safe for concurrent use on different messages.</summary>
    public static class Proto
    {
        /// <summary>The empty byte array that unset bytes fields hold. Never write into it.</summary>
        public static readonly byte[] EmptyBytes = new byte[0];

        /// <summary>The message's encoding, byte for byte as protobuf-go's deterministic marshalling.</summary>
        public static byte[] Encode(IMessage message)
        {
            var w = new ProtoWriter();
            message.WriteTo(w);
            return w.ToArray();
        }

        /// <summary>Decodes data into a new T.</summary>
        /// <exception cref="ProtoException">data is not a valid encoding of T.</exception>
        public static T Decode<T>(byte[] data) where T : IMessage, new()
        {
            var m = new T();
            Merge(m, data, 0, data.Length);
            return m;
        }

        /// <summary>Decodes data[offset, offset+count) and merges it into message.</summary>
        /// <exception cref="ProtoException">The bytes are not a valid encoding of the message.</exception>
        public static void Merge(IMessage message, byte[] data, int offset, int count)
        {
            message.MergeFrom(new ProtoReader(data, offset, count));
        }

        /// <summary>The message as protojson writes it (proto field names, defaults left out).</summary>
        public static string ToJson(IMessage message)
        {
            var w = new JsonWriter();
            w.Value(message);
            return w.ToString();
        }
    }
}
