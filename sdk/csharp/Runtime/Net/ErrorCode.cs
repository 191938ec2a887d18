using System.Globalization;

namespace Moonforge
{
    /// <summary>The error codes of docs/protocol.md. Codes of 1000 and above belong to the application and
    /// have no name here: cast them, <c>(ErrorCode)1001</c>.</summary>
    public enum ErrorCode : uint
    {
        /// <summary>No error: the code of events that carry none.</summary>
        None = 0,
        /// <summary>Length out of range, unknown flag bit, text WebSocket message; the connection closes.</summary>
        MalformedFrame = 1,
        /// <summary>Length above the maximum frame size; the connection closes.</summary>
        FrameTooLarge = 2,
        /// <summary>msg_id not declared in the loaded schema.</summary>
        UnknownMessage = 3,
        /// <summary>The payload is not a valid encoding of the declared message.</summary>
        DecodeFailed = 4,
        /// <summary>Not logged in, or a bad or expired token or password.</summary>
        Unauthenticated = 5,
        /// <summary>The message may not be sent by clients, or access is denied.</summary>
        Forbidden = 6,
        /// <summary>Over the session's rate; RetryAfterMs says when to retry.</summary>
        RateLimited = 7,
        /// <summary>No node serves this message now, a mailbox is full, the server drains, or the client has no connection.</summary>
        Unavailable = 8,
        /// <summary>No reply within the request deadline (the server's or the client's RequestTimeout).</summary>
        Timeout = 9,
        /// <summary>The handler failed.</summary>
        Internal = 10,
        /// <summary>The session cannot be resumed: log in again.</summary>
        ResumeFailed = 11,
        /// <summary>The same player logged in on another connection (in Kick).</summary>
        KickedDuplicateLogin = 12,
        /// <summary>No frame for 3 heartbeat intervals (in Kick).</summary>
        IdleTimeout = 13,
        /// <summary>The server is stopping (in Kick).</summary>
        ServerShutdown = 14,
        /// <summary>The request is well-formed but not acceptable.</summary>
        BadRequest = 15,
    }

    /// <summary>Names of error codes as docs/protocol.md writes them.</summary>
    public static class ErrorCodes
    {
        /// <summary>The first application code.</summary>
        public const uint FirstApplicationCode = 1000;

        /// <summary>"BAD_REQUEST" for 15, "APP_1001" for application codes, "CODE_16" for reserved ones,
        /// "NONE" for 0.</summary>
        public static string Name(ErrorCode code)
        {
            switch (code)
            {
                case ErrorCode.None: return "NONE";
                case ErrorCode.MalformedFrame: return "MALFORMED_FRAME";
                case ErrorCode.FrameTooLarge: return "FRAME_TOO_LARGE";
                case ErrorCode.UnknownMessage: return "UNKNOWN_MESSAGE";
                case ErrorCode.DecodeFailed: return "DECODE_FAILED";
                case ErrorCode.Unauthenticated: return "UNAUTHENTICATED";
                case ErrorCode.Forbidden: return "FORBIDDEN";
                case ErrorCode.RateLimited: return "RATE_LIMITED";
                case ErrorCode.Unavailable: return "UNAVAILABLE";
                case ErrorCode.Timeout: return "TIMEOUT";
                case ErrorCode.Internal: return "INTERNAL";
                case ErrorCode.ResumeFailed: return "RESUME_FAILED";
                case ErrorCode.KickedDuplicateLogin: return "KICKED_DUPLICATE_LOGIN";
                case ErrorCode.IdleTimeout: return "IDLE_TIMEOUT";
                case ErrorCode.ServerShutdown: return "SERVER_SHUTDOWN";
                case ErrorCode.BadRequest: return "BAD_REQUEST";
            }
            string n = ((uint)code).ToString(CultureInfo.InvariantCulture);
            return (uint)code >= FirstApplicationCode ? "APP_" + n : "CODE_" + n;
        }
    }
}
