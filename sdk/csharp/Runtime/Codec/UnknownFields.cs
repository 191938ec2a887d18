using System;

namespace Moonforge
{
    /// <summary>
    /// The fields of a message that its schema does not know, kept as their raw bytes in the order they
    /// were read and written back after the known fields, so a message passes through unchanged.
    /// </summary>
    public sealed class UnknownFields
    {
        private byte[] data = new byte[16];
        private int length;

        /// <summary>Number of bytes held.</summary>
        public int Length
        {
            get { return length; }
        }

        /// <summary>A copy of the raw bytes (tags included).</summary>
        public byte[] ToArray()
        {
            var copy = new byte[length];
            Buffer.BlockCopy(data, 0, copy, 0, length);
            return copy;
        }

        internal void Append(byte[] src, int offset, int count)
        {
            if (data.Length - length < count)
            {
                var grown = new byte[Math.Max(data.Length * 2, length + count)];
                Buffer.BlockCopy(data, 0, grown, 0, length);
                data = grown;
            }
            Buffer.BlockCopy(src, offset, data, length, count);
            length += count;
        }

        internal void WriteTo(ProtoWriter writer)
        {
            writer.WriteRaw(data, 0, length);
        }
    }
}
