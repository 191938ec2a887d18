using System;

namespace Moonforge
{
    /// <summary>Bytes that are not a valid Protocol Buffers encoding of the expected message.</summary>
    public sealed class ProtoException : Exception
    {
        /// <summary>Creates the exception; offset is where in the input the problem was found.</summary>
        public ProtoException(string message, int offset)
            : base(message + " (at byte " + offset + ")")
        {
            Offset = offset;
        }

        /// <summary>Byte offset in the decoded buffer where the problem was found.</summary>
        public int Offset { get; private set; }
    }
}
