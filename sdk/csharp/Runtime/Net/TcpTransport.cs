using System;
using System.Collections.Generic;
using System.IO;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Threading;
using System.Threading.Tasks;

namespace Moonforge
{
    /// <summary>
    /// Frames over TCP (optionally TLS): reads into a buffer and splits it into frames; writes each
    /// batch of frames with a single write. See <see cref="ITransport"/> for the threading contract.
    /// </summary>
    public sealed class TcpTransport : ITransport
    {
        private readonly string host;
        private readonly int port;
        private readonly bool tls;
        private readonly int maxLength;
        private readonly TcpClient tcp = new TcpClient();
        private Stream stream;
        private byte[] rbuf;
        private int rstart;
        private int rend;
        private byte[] wbuf = new byte[16 * 1024];

        /// <summary>A transport to host:port; maxLength is the largest length field accepted.</summary>
        public TcpTransport(string host, int port, bool tls, int maxLength)
        {
            this.host = host;
            this.port = port;
            this.tls = tls;
            this.maxLength = maxLength;
            rbuf = new byte[Math.Min(64 * 1024, maxLength + Frame.LengthSize)];
            tcp.NoDelay = true;
        }

        /// <summary>The name the server's certificate must carry; null means the host.</summary>
        public string TlsServerName { get; set; }

        /// <summary>The certificate check; null is the system's (chain and name).</summary>
        public RemoteCertificateValidationCallback TlsValidation { get; set; }

        /// <summary>A check that accepts what the system accepts, and also a chain that ends in root
        /// (a self-signed development certificate, say) when the certificate names serverName; null
        /// root: the system's check alone.</summary>
        public static RemoteCertificateValidationCallback TrustingRoot(X509Certificate2 root, string serverName)
        {
            if (root == null) return null;
            return (sender, certificate, chain, errors) =>
            {
                if (errors == SslPolicyErrors.None) return true;
                if (certificate == null || (errors & (SslPolicyErrors.RemoteCertificateNameMismatch | SslPolicyErrors.RemoteCertificateNotAvailable)) != 0) return false;
                // Some TLS stacks report only the chain error for an unknown root: check the name here.
                if (!Names(new X509Certificate2(certificate), serverName)) return false;
                var own = new X509Chain();
                own.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                own.ChainPolicy.VerificationFlags = X509VerificationFlags.AllowUnknownCertificateAuthority;
                own.ChainPolicy.ExtraStore.Add(root);
                var leaf = new X509Certificate2(certificate);
                if (!own.Build(leaf) && own.ChainElements.Count == 0) return false;
                var top = own.ChainElements[own.ChainElements.Count - 1].Certificate;
                return top.Thumbprint == root.Thumbprint;
            };
        }

        // Names reports whether the certificate's subjectAltName (or, without one, its common name)
        // carries name, a "*." entry covering one label.
        private static bool Names(X509Certificate2 cert, string name)
        {
            var names = new List<string>();
            foreach (X509Extension ext in cert.Extensions)
            {
                if (ext.Oid == null || ext.Oid.Value != "2.5.29.17") continue;
                foreach (string part in ext.Format(false).Split(',', '\n', '\r'))
                {
                    string p = part.Trim();
                    int eq = p.IndexOf('=');
                    int colon = p.IndexOf(':');
                    int cut = eq >= 0 ? eq : colon;
                    if (cut > 0 && p.Substring(0, cut).Trim().StartsWith("DNS", StringComparison.OrdinalIgnoreCase)) names.Add(p.Substring(cut + 1).Trim());
                    else if (cut > 0 && p.Substring(0, cut).Trim().StartsWith("IP", StringComparison.OrdinalIgnoreCase)) names.Add(p.Substring(cut + 1).Trim());
                }
            }
            if (names.Count == 0) names.Add(cert.GetNameInfo(X509NameType.DnsName, false));
            foreach (string n in names)
            {
                if (string.Equals(n, name, StringComparison.OrdinalIgnoreCase)) return true;
                if (n.StartsWith("*.", StringComparison.Ordinal) && name.EndsWith(n.Substring(1), StringComparison.OrdinalIgnoreCase)
                    && name.IndexOf('.') == name.Length - n.Length + 1) return true;
            }
            return false;
        }

        /// <inheritdoc/>
        public async Task ConnectAsync(CancellationToken cancellationToken)
        {
            using (cancellationToken.Register(Abort))
            {
                try
                {
                    await tcp.ConnectAsync(host, port).ConfigureAwait(false);
                }
                catch (ObjectDisposedException) when (cancellationToken.IsCancellationRequested)
                {
                    throw new OperationCanceledException(cancellationToken);
                }
                Stream s = tcp.GetStream();
                if (tls)
                {
                    var ssl = new SslStream(s, false, TlsValidation);
                    await ssl.AuthenticateAsClientAsync(TlsServerName ?? host, null, SslProtocols.Tls12, false).ConfigureAwait(false);
                    s = ssl;
                }
                stream = s;
            }
        }

        /// <inheritdoc/>
        public async Task<Frame> ReceiveAsync(CancellationToken cancellationToken)
        {
            while (true)
            {
                Frame f;
                int used;
                if (FrameCodec.TryDecodeStream(rbuf, rstart, rend - rstart, maxLength, out f, out used))
                {
                    rstart += used;
                    return f;
                }
                MakeRoom();
                int n = await stream.ReadAsync(rbuf, rend, rbuf.Length - rend, cancellationToken).ConfigureAwait(false);
                if (n <= 0) throw new IOException("connection closed by the server");
                rend += n;
            }
        }

        /// <inheritdoc/>
        public async Task SendAsync(IList<Frame> frames, CancellationToken cancellationToken)
        {
            int n = FrameCodec.WriteStreams(frames, ref wbuf);
            await stream.WriteAsync(wbuf, 0, n, cancellationToken).ConfigureAwait(false);
            await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
        }

        /// <inheritdoc/>
        public void Abort()
        {
            tcp.Close();
        }

        /// <summary>Closes the connection.</summary>
        public void Dispose()
        {
            Abort();
        }

        // MakeRoom moves unread bytes to the front, or grows the buffer for a frame larger than it.
        private void MakeRoom()
        {
            if (rstart == rend)
            {
                rstart = rend = 0;
                return;
            }
            if (rstart > 0)
            {
                Buffer.BlockCopy(rbuf, rstart, rbuf, 0, rend - rstart);
                rend -= rstart;
                rstart = 0;
            }
            if (rend == rbuf.Length)
            {
                var grown = new byte[Math.Min(rbuf.Length * 2, maxLength + Frame.LengthSize)];
                Buffer.BlockCopy(rbuf, 0, grown, 0, rend);
                rbuf = grown;
            }
        }
    }
}
