using System;

namespace Moonforge
{
    /// <summary>
    /// An error with a code of docs/protocol.md: an Error reply from the server (a framework code or an
    /// application code of 1000 and above), or a failure the client reports with the same codes
    /// (Timeout, Unavailable when there is no connection, MalformedFrame for a broken frame).
    /// </summary>
    public class MoonforgeException : Exception
    {
        /// <summary>Creates the exception.</summary>
        public MoonforgeException(ErrorCode code, string message, uint retryAfterMs = 0, Exception inner = null)
            : base(message, inner)
        {
            Code = code;
            RetryAfterMs = retryAfterMs;
        }

        /// <summary>The code; application codes are cast values, <c>(uint)Code == 1001</c>.</summary>
        public ErrorCode Code { get; private set; }

        /// <summary>The code's name: "BAD_REQUEST", "APP_1001".</summary>
        public string CodeName
        {
            get { return ErrorCodes.Name(Code); }
        }

        /// <summary>True for codes of 1000 and above, raised by gameplay code.</summary>
        public bool IsApplicationError
        {
            get { return (uint)Code >= ErrorCodes.FirstApplicationCode; }
        }

        /// <summary>For RateLimited and some Unavailable errors: when to retry, in milliseconds; else 0.</summary>
        public uint RetryAfterMs { get; private set; }

        /// <summary>"CODE_NAME: message".</summary>
        public override string ToString()
        {
            return CodeName + ": " + Message;
        }
    }
}
